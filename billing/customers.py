"""Customers (people and companies): checked details, create, edit, search; and erasure.

    details = checked_details({"kind": "company", "company_name": "Atelier Bois SARL", ...})
    customer = save_customer(db, details, actor="camille")           # a new one, ref 'C-4F2A9'
    save_customer(db, details, actor="camille", customer_id=customer.id)   # edited, audited
    search_customers(db, "bois")                                     # by name, city, SIREN, ref…
    erase_customer(db, "C-4F2A9", actor="camille")   # a customer record and its visits' names
    erase_visit_name(db, 12, actor="camille")         # a named walk-in with no customer record
    keep_person(db, pepper, 12, "0A1B2C3D", actor="camille")  # the visitor's own badge finds them again

A company's SIREN or SIRET is checked with its Luhn key (La Poste's SIRETs by their digit
sum), its intra-EU VAT number by the country's format and key (the French key against the
SIREN). Each problem names its field (``InvalidCustomer.problems``).

Documents hash a pseudonymous reference, never a person's name, so ``fabmeter ledger verify``
stays green; an invoice freezes its company buyer (``invoice_buyer``) into its content, so an
edit of the customer changes no issued invoice. French law keeps an invoice's buyer for ten
years: a customer with a younger invoice is not erased (the error says until when).
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from stdnum.eu import vat
from stdnum.exceptions import ValidationError
from stdnum.fr import siren as siren_number
from stdnum.fr import siret as siret_number

from billing.audit import audit
from billing.credentials import badge_hash, checked_badge_uid
from billing.errors import InvalidOperation, NotFound
from billing.ledger.documents import Document
from billing.models import CUSTOMER_KINDS, Customer, Visit, utcnow

INVOICE_RETENTION = timedelta(days=10 * 366)


def erase_customer(db: Session, ref: str, *, actor: str) -> Customer:
    customer = db.scalar(select(Customer).where(Customer.ref == ref))
    if customer is None:
        raise NotFound("no customer with reference %(ref)r", ref=ref)
    _refuse_if_invoiced(db, customer)
    customer.name = customer.email = customer.company_name = None
    customer.company_address = customer.siren = customer.vat_number = customer.badge_hash = None
    customer.postcode = customer.city = None
    customer.erased_at = utcnow()
    for visit in db.scalars(select(Visit).where(Visit.customer_id == customer.id)):
        visit.label = f"Visiteur {visit.id}"
    audit(db, actor, "erase_customer", f"customer {customer.ref}", "personal data erased")
    db.flush()
    return customer


def keep_person(db: Session, pepper: str, visit_id: int, badge_uid: str, *, actor: str) -> Customer:
    """Make the visit's person a customer found again by their own badge on later visits (their
    qualifications come with them). The visit's customer gets the badge, or a new customer is made."""
    visit = db.get(Visit, visit_id)
    if visit is None:
        raise NotFound("no visit %(visit)s", visit=visit_id)
    digest = badge_hash(pepper, checked_badge_uid(badge_uid))
    owner = db.scalar(select(Customer).where(Customer.badge_hash == digest))
    customer = visit.customer or owner or Customer(ref=_fresh_ref(db), name=_name_of(visit))
    if owner is not None and owner is not customer:
        raise InvalidOperation("this badge is already customer %(ref)s's own badge", ref=owner.ref)
    customer.badge_hash = digest
    db.add(customer)
    visit.customer = customer
    audit(db, actor, "keep_person", f"customer {customer.ref}", f"visit {visit_id}")
    db.flush()
    return customer


def _name_of(visit: Visit) -> str | None:
    return None if visit.label == f"Visiteur {visit.id}" else visit.label


def _fresh_ref(db: Session) -> str:
    while True:
        ref = f"C-{secrets.token_hex(3).upper()}"
        if db.scalar(select(Customer.id).where(Customer.ref == ref)) is None:
            return ref


def erase_visit_name(db: Session, visit_id: int, *, actor: str) -> Visit:
    visit = db.get(Visit, visit_id)
    if visit is None:
        raise NotFound("no visit %(visit)s", visit=visit_id)
    visit.label = f"Visiteur {visit.id}"
    audit(db, actor, "erase_visit_name", f"visit {visit.id}", "name erased")
    db.flush()
    return visit


def _refuse_if_invoiced(db: Session, customer: Customer) -> None:
    newest = db.scalar(
        select(Document.issued_at)
        .join(Visit, Document.visit_id == Visit.id)
        .where(Visit.customer_id == customer.id, Document.kind == "invoice")
        .order_by(Document.issued_at.desc())
        .limit(1)
    )
    if newest is not None and utcnow() - newest < INVOICE_RETENTION:
        until = (newest + INVOICE_RETENTION).date().isoformat()
        raise InvalidOperation(
            "customer %(ref)s has an invoice of %(issued)s: its buyer must be kept until %(until)s",
            ref=customer.ref, issued=newest.date().isoformat(), until=until,
        )




def N_(message: str) -> str:
    """Marks a message for the dashboard's translation catalogue (gettext_noop): pybabel -k N_."""
    return message


# Problems are English msgids with %(name)s fields: the dashboard shows them translated.
REQUIRED = N_("Required for a company's invoice.")
LONGER = N_("At most %(n)s characters.")
CONTROL = N_("Remove the control characters (tab, escape…) from this text.")
NOT_SIREN = N_("A SIREN has 9 digits, a SIRET 14 (spaces allowed).")
BAD_KEY = N_("This number's check digit is wrong: check each digit.")
NOT_VAT = N_("An intra-EU VAT number is the country's code then the number (FR40303265045).")
BAD_VAT_KEY = N_("This VAT number's key is wrong for %(country)s: check each character.")
VAT_SIREN = N_("A French VAT number holds the SIREN %(siren)s: FR%(key)s%(siren)s.")
NOT_EMAIL = N_("Write an e-mail address like nom@exemple.fr.")
NOT_POSTCODE = N_("A French postcode has 5 digits.")
NOT_COUNTRY = N_("A country is its two-letter code (FR, BE, DE…).")
NO_NAME = N_("A customer needs a name.")
NOT_KIND = N_("A customer is a person or a company.")
PERSON_SIREN = N_("A person has no SIREN nor VAT number here: make the customer a company (a sole trader too).")

# VAT numbers of Greece begin with EL, Northern Ireland's with XI
VAT_COUNTRIES = {code.upper() for code in vat.MEMBER_STATES} - {"GR"} | {"EL"}
LIMITS = {"name": 200, "company_name": 200, "company_address": 500, "postcode": 10, "city": 100,
          "country": 2, "siren": 30, "vat_number": 30, "email": 200}  # fmt: skip  # as typed, spaces too


class InvalidCustomer(InvalidOperation):
    """Details refused; ``problems`` maps each field to (message, values) for the form."""

    def __init__(self, problems: Mapping[str, tuple[str, dict[str, Any]]]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{field}: {message % values}" for field, (message, values) in self.problems.items()))


@dataclass(frozen=True)
class CustomerDetails:
    """What staff typed for a customer, checked and normalised (SIREN digits only, 'FR')."""

    kind: str = "person"
    name: str = ""
    company_name: str = ""
    company_address: str = ""
    postcode: str = ""
    city: str = ""
    country: str = "FR"
    siren: str = ""
    vat_number: str = ""
    email: str = ""

    @classmethod
    def of(cls, customer: Customer) -> CustomerDetails:
        return cls(**{f.name: getattr(customer, f.name) or "" for f in fields(cls)})


def _clean(field: str, raw: object, problems: dict[str, tuple[str, dict[str, Any]]]) -> str:
    text = unicodedata.normalize("NFC", str(raw or "")).replace("\r\n", "\n").strip()
    allowed = "\n" if field == "company_address" else ""
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") and c not in allowed for c in text):
        problems[field] = (CONTROL, {})
    elif len(text) > LIMITS[field]:
        problems[field] = (LONGER, {"n": LIMITS[field]})
    return text


def checked_details(raw: Mapping[str, object]) -> CustomerDetails:
    """The details as they will be stored, or ``InvalidCustomer`` naming every wrong field."""
    problems: dict[str, tuple[str, dict[str, Any]]] = {}
    kind = str(raw.get("kind") or "person")
    if kind not in CUSTOMER_KINDS:
        problems["kind"] = (NOT_KIND, {})
    text = {field: _clean(field, raw.get(field), problems) for field in LIMITS}
    text["country"] = (text["country"] or "FR").upper()
    text["siren"] = _identifier(text["siren"], problems)
    text["vat_number"] = _vat(text["vat_number"], text["siren"], problems)
    _rest(kind, text, problems)
    if problems:
        raise InvalidCustomer(problems)
    return CustomerDetails(kind=kind, **text)


def _identifier(raw: str, problems: dict[str, tuple[str, dict[str, Any]]]) -> str:
    """A SIREN or a SIRET, digits only ('' when none was typed)."""
    digits = raw.replace(" ", "").replace(".", "").replace("-", "")
    if not digits or "siren" in problems:
        return digits
    if not (digits.isascii() and digits.isdigit()) or len(digits) not in (9, 14):
        problems["siren"] = (NOT_SIREN, {})
        return digits
    try:
        (siren_number if len(digits) == 9 else siret_number).validate(digits)
    except ValidationError:
        problems["siren"] = (BAD_KEY, {})
    return digits


def _vat(raw: str, identifier: str, problems: dict[str, tuple[str, dict[str, Any]]]) -> str:
    number = raw.replace(" ", "").replace(".", "").replace("-", "").upper()
    if not number or "vat_number" in problems:
        return number
    country = number[:2]
    if country not in VAT_COUNTRIES:
        problems["vat_number"] = (NOT_VAT, {})
        return number
    try:
        vat.validate(number)
    except ValidationError:
        problems["vat_number"] = (BAD_VAT_KEY, {"country": country})
        return number
    siren = identifier[:9]
    if country == "FR" and len(siren) == 9 and "siren" not in problems and number[4:] != siren:
        problems["vat_number"] = (VAT_SIREN, {"siren": siren, "key": siren_number.to_tva(siren)[:2]})
    return number


def _rest(kind: str, text: dict[str, str], problems: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """Name, e-mail, country, postcode; and what a company's invoice needs."""
    if text["email"] and "email" not in problems and not _looks_like_email(text["email"]):
        problems["email"] = (NOT_EMAIL, {})
    if "country" not in problems and not (len(text["country"]) == 2 and text["country"].isascii() and text["country"].isalpha()):
        problems["country"] = (NOT_COUNTRY, {})
    if text["country"] == "FR" and text["postcode"] and not (
        len(text["postcode"]) == 5 and text["postcode"].isascii() and text["postcode"].isdigit()
    ):
        problems.setdefault("postcode", (NOT_POSTCODE, {}))
    if kind == "company":
        needed = ["company_name", "company_address", "postcode", "city"]
        needed += ["siren"] if text["country"] == "FR" else []
        for field in needed:
            if not text[field]:
                problems.setdefault(field, (REQUIRED, {}))
    else:
        if not text["name"]:
            problems.setdefault("name", (NO_NAME, {}))
        for field in ("siren", "vat_number"):  # only a company's invoice names them
            if text[field]:
                problems.setdefault(field, (PERSON_SIREN, {}))


def _looks_like_email(text: str) -> bool:
    """One @, a dot in the domain, no spaces: the shape, not the mailbox (the mail server decides)."""
    local, at, domain = text.rpartition("@")
    return bool(at and local and "." in domain.strip(".") and not any(c.isspace() for c in text)
                and "@" not in local and ".." not in domain)  # fmt: skip


def save_customer(
    db: Session, details: CustomerDetails, *, actor: str, customer_id: int | None = None,
    now: datetime | None = None,
) -> Customer:  # fmt: skip
    """Create a customer (``customer_id`` None) or change one; audited with the fields changed."""
    if customer_id is None:
        customer = Customer(ref=_new_ref(db), created_at=now or utcnow())
        db.add(customer)
        changed = [name for name, value in asdict(details).items() if value]
    else:
        found = db.get(Customer, customer_id)
        if found is None or found.erased_at is not None:
            raise NotFound("no customer %(customer)s", customer=customer_id)
        customer = found
        before = asdict(CustomerDetails.of(customer))
        changed = [name for name, value in asdict(details).items() if before[name] != value]
        customer.updated_at = now or utcnow()
    for name, value in asdict(details).items():
        setattr(customer, name, value or None)
    db.flush()
    action = "create_customer" if customer_id is None else "edit_customer"
    audit(db, actor, action, f"customer {customer.ref}", ", ".join(changed) or "nothing changed")
    return customer


def _new_ref(db: Session) -> str:
    """A pseudonym for documents ('C-4F2A9'), unrelated to the order customers were created in."""
    while True:
        ref = f"C-{secrets.token_hex(3).upper()[:5]}"
        if db.scalar(select(Customer.id).where(Customer.ref == ref)) is None:
            return ref


def search_customers(db: Session, text: str = "", *, limit: int = 100) -> list[Customer]:
    """Customers not erased whose name, company, city, e-mail, SIREN or reference holds ``text``."""
    query = select(Customer).where(Customer.erased_at.is_(None))
    words = text.strip()[:100]
    if words:
        pattern = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        columns = (Customer.name, Customer.company_name, Customer.city, Customer.email, Customer.ref,
                   Customer.siren, Customer.vat_number)  # fmt: skip
        query = query.where(or_(*(column.ilike(pattern, escape="\\") for column in columns)))
    order = (Customer.company_name.is_(None), Customer.company_name, Customer.name, Customer.id)
    return list(db.scalars(query.order_by(*order).limit(limit)))


def display_name(customer: Customer) -> str:
    """'Atelier Bois SARL (Léa Martin)', 'Camille Durand', or the reference once erased."""
    if customer.company_name and customer.name:
        return f"{customer.company_name} ({customer.name})"
    return customer.company_name or customer.name or customer.ref


def invoice_buyer(customer: Customer | None, visit_id: int | None = None) -> dict[str, str]:
    """The buyer as an invoice names it, frozen into its content; refused when incomplete."""
    if customer is None or customer.kind != "company" or customer.erased_at is not None:
        if visit_id is None:
            raise InvalidOperation("a company's visit needs a company customer, with its name, address and SIREN "
                                   "(the invoice names its buyer)")  # fmt: skip
        raise InvalidOperation("visit %(visit)s is a company's: its customer must be a company, with its name, "
                               "address and SIREN (the invoice names its buyer)", visit=visit_id)  # fmt: skip
    try:
        details = checked_details(asdict(CustomerDetails.of(customer)))
    except InvalidCustomer as err:
        raise InvalidOperation("the invoice of visit %(visit)s cannot name its buyer %(customer)s: %(why)s — "
                               "complete the customer first", visit=visit_id if visit_id is not None else "?",
                               customer=customer.ref, why=str(err)) from err  # fmt: skip
    buyer = {"name": details.company_name, "address": details.company_address,
             "postcode": details.postcode, "city": details.city, "country": details.country,
             "siren": details.siren, "vat_number": details.vat_number}  # fmt: skip
    return {key: value for key, value in buyer.items() if value}
