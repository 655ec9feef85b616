"""Customers: SIREN/SIRET by their Luhn key (La Poste's SIRETs by their digit sum), intra-EU VAT
numbers by each country's format and key (``python-stdnum``), what a company's invoice needs,
and text that must never reach a document (control characters, overlong fields).

Valid numbers are public registrations: Danone's SIREN 552 100 554 and its head office SIRET
552 100 554 00013, La Poste's head office 356 000 000 00048; the VAT numbers are the examples of
the European Commission's VIES documentation and of python-stdnum's test suite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.customers import (
    BAD_KEY,
    BAD_VAT_KEY,
    CONTROL,
    LONGER,
    NO_NAME,
    NOT_COUNTRY,
    NOT_EMAIL,
    NOT_KIND,
    NOT_POSTCODE,
    NOT_SIREN,
    NOT_VAT,
    PERSON_SIREN,
    REQUIRED,
    VAT_SIREN,
    CustomerDetails,
    InvalidCustomer,
    checked_details,
    invoice_buyer,
    save_customer,
    search_customers,
)
from billing.errors import InvalidOperation, NotFound
from billing.models import AuditEntry, Customer

COMPANY = {"kind": "company", "company_name": "Atelier Bois & Fils SARL", "name": "Léa Martin",
           "company_address": "12 rue des Scieurs", "postcode": "01000", "city": "Bourg-en-Bresse",
           "country": "FR", "siren": "552 100 554", "vat_number": "FR 96 552 100 554",
           "email": "lea@atelier-bois.fr"}  # fmt: skip
BELGIAN = {**COMPANY, "country": "BE", "postcode": "1000", "city": "Bruxelles", "siren": ""}
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def problems(**fields: Any) -> dict[str, str]:
    try:
        checked_details(fields)
    except InvalidCustomer as err:
        return {field: message for field, (message, _values) in err.problems.items()}
    return {}


def test_a_complete_company_is_stored_normalised() -> None:
    details = checked_details(COMPANY)
    assert (details.siren, details.vat_number, details.country) == ("552100554", "FR96552100554", "FR")


@pytest.mark.parametrize("number", [
    "552100554", "552 100 554", "552.100.554", "55210055400013", "552 100 554 00013",
    "356000000", "35600000000048",  # La Poste's head office follows Luhn
    "35600000000010",  # a La Poste SIRET: no Luhn, its digits add up to a multiple of 5
    "732829320", "73282932000074",
])  # fmt: skip
def test_valid_siren_and_siret(number: str) -> None:
    assert problems(**{**COMPANY, "siren": number, "vat_number": ""}) == {}


@pytest.mark.parametrize(("number", "message"), [
    ("552100555", BAD_KEY),  # one digit off
    ("525100554", BAD_KEY),  # two digits swapped
    ("55210055400014", BAD_KEY),
    ("35600000000011", BAD_KEY),  # La Poste, digit sum 16
    ("55210055", NOT_SIREN), ("5521005540001", NOT_SIREN), ("552100554000130", NOT_SIREN),
    ("55210055A", NOT_SIREN), ("５５２１００５５４", NOT_SIREN),  # full-width digits are not digits here
    ("552100554;DROP", NOT_SIREN), ("1" * 31, LONGER),
])  # fmt: skip
def test_invalid_siren_and_siret_say_why(number: str, message: str) -> None:
    assert problems(**{**COMPANY, "siren": number, "vat_number": ""}) == {"siren": message}


@pytest.mark.parametrize("number", [
    "FR96552100554", "fr 96 552 100 554", "FR40303265045", "BE0403170701", "DE136695976",
    "ATU13585627", "NL004495445B01", "IT00743110157", "ESA28015865", "EL094259216", "XI925901618",
])  # fmt: skip
def test_valid_intra_eu_vat_numbers(number: str) -> None:
    assert problems(**{**BELGIAN, "vat_number": number}) == {}


@pytest.mark.parametrize(("number", "message"), [
    ("FR97552100554", BAD_VAT_KEY),  # the French key is (12 + 3 × (SIREN mod 97)) mod 97
    ("FR96552100555", BAD_VAT_KEY), ("DE136695977", BAD_VAT_KEY), ("BE0403170702", BAD_VAT_KEY),
    ("GR094259216", NOT_VAT),  # Greece's VAT numbers begin with EL
    ("US123456789", NOT_VAT), ("552100554", NOT_VAT), ("F", NOT_VAT), ("12345678901", NOT_VAT),
])  # fmt: skip
def test_invalid_vat_numbers_say_why(number: str, message: str) -> None:
    assert problems(**{**BELGIAN, "vat_number": number}) == {"vat_number": message}


def test_a_french_vat_number_must_hold_the_customers_siren() -> None:
    found = problems(**{**COMPANY, "vat_number": "FR40303265045"})  # valid, but another company's
    assert found == {"vat_number": VAT_SIREN}
    with pytest.raises(InvalidCustomer, match="FR96552100554"):
        checked_details({**COMPANY, "vat_number": "FR40303265045"})
    assert problems(**{**COMPANY, "siren": "55210055400013", "vat_number": "FR96552100554"}) == {}


@pytest.mark.parametrize("field", ["company_name", "company_address", "postcode", "city", "siren"])
def test_a_company_needs_what_its_invoice_names(field: str) -> None:
    assert problems(**{**COMPANY, field: "  "}) == {field: REQUIRED}


def test_a_person_has_no_siren_nor_vat_number() -> None:
    """A sole trader who wants invoices is a company customer: only a company's invoice names them."""
    assert problems(name="Camille", siren="552100554", vat_number="FR96552100554") == {
        "siren": PERSON_SIREN, "vat_number": PERSON_SIREN}  # fmt: skip


def test_a_foreign_company_needs_no_siren_and_a_free_postcode() -> None:
    belgian = {**COMPANY, "country": "be", "postcode": "B-1000", "siren": "", "vat_number": "BE0403170701"}
    assert checked_details(belgian).country == "BE"


@pytest.mark.parametrize(("fields", "expected"), [
    ({"name": ""}, {"name": NO_NAME}),
    ({}, {"name": NO_NAME}),
    ({"name": "x", "kind": "robot"}, {"kind": NOT_KIND}),
    ({"name": "x", "email": "camille"}, {"email": NOT_EMAIL}),
    ({"name": "x", "email": "camille@localhost"}, {"email": NOT_EMAIL}),
    ({"name": "x", "email": "a b@exemple.fr"}, {"email": NOT_EMAIL}),
    ({"name": "x", "email": "a@b@exemple.fr"}, {"email": NOT_EMAIL}),
    ({"name": "x", "email": "a@exemple..fr"}, {"email": NOT_EMAIL}),
    ({"name": "x", "postcode": "7500"}, {"postcode": NOT_POSTCODE}),
    ({"name": "x", "postcode": "75 001"}, {"postcode": NOT_POSTCODE}),
    ({"name": "x", "country": "France"}, {"country": LONGER}),
    ({"name": "x", "country": "F1"}, {"country": NOT_COUNTRY}),
    ({"name": "x" * 201}, {"name": LONGER}),
    ({"name": "x", "company_address": "r" * 501}, {"company_address": LONGER}),
])  # fmt: skip
def test_each_wrong_field_is_named(fields: dict[str, str], expected: dict[str, str]) -> None:
    assert problems(**fields) == expected


@pytest.mark.parametrize("hostile", [
    "Camille\x1b[2J", "Camille\x07", "Cam\x00ille", "Camille\u202eelliM", "Camille\ttab",
    "Camille\x1bp\x00\x19\xfa",  # ESC p: opens the cash drawer of an ESC/POS printer
    "Camille\u200b",  # a zero-width space
])  # fmt: skip
def test_control_characters_are_refused_in_every_text_field(hostile: str) -> None:
    for field in ("name", "company_name", "company_address", "city", "email"):
        assert problems(**{**COMPANY, field: hostile}).get(field) == CONTROL, field


def test_an_address_keeps_its_lines_and_html_stays_text() -> None:
    details = checked_details({**COMPANY, "company_address": "Bât. B\r\n12 rue des Scieurs",
                               "company_name": "<script>alert(1)</script> & =HYPERLINK(\"x\")"})  # fmt: skip
    assert details.company_address == "Bât. B\n12 rue des Scieurs"
    assert details.company_name.startswith("<script>")  # stored as typed: pages escape it


def test_decomposed_accents_are_stored_composed() -> None:
    assert checked_details({"name": "Le\u0301a"}).name == "Léa"


def test_create_edit_and_search_are_audited(db: Session) -> None:
    company = save_customer(db, checked_details(COMPANY), actor="alice", now=NOW)
    person = save_customer(db, checked_details({"name": "Camille Durand", "city": "Belley"}), actor="bob")
    assert company.ref.startswith("C-") and company.ref != person.ref
    assert [c.id for c in search_customers(db, "bois")] == [company.id]
    assert [c.id for c in search_customers(db, "552100")] == [company.id]
    assert [c.id for c in search_customers(db, "BELLEY")] == [person.id]
    assert {c.id for c in search_customers(db)} == {company.id, person.id}
    assert search_customers(db, "100%") == [] and search_customers(db, "_") == []
    save_customer(db, CustomerDetails(**{**CustomerDetails.of(person).__dict__, "city": "Lyon"}),
                  actor="bob", customer_id=person.id, now=NOW)  # fmt: skip
    entries = db.scalars(select(AuditEntry).where(AuditEntry.action.like("%_customer")).order_by(AuditEntry.id))
    assert [(e.actor, e.action, e.detail) for e in entries][-1] == ("bob", "edit_customer", "city")
    assert db.get(Customer, person.id).updated_at == NOW  # type: ignore[union-attr]


def test_an_erased_customer_cannot_be_edited_or_found(db: Session) -> None:
    person = save_customer(db, checked_details({"name": "Camille Durand"}), actor="bob")
    person.erased_at = NOW
    db.flush()
    assert search_customers(db, "") == []
    with pytest.raises(NotFound):
        save_customer(db, checked_details({"name": "Camille"}), actor="bob", customer_id=person.id)


def test_the_invoice_buyer_is_a_complete_company(db: Session) -> None:
    company = save_customer(db, checked_details(COMPANY), actor="alice")
    assert invoice_buyer(company, 7) == {
        "name": "Atelier Bois & Fils SARL", "address": "12 rue des Scieurs", "postcode": "01000",
        "city": "Bourg-en-Bresse", "country": "FR", "siren": "552100554", "vat_number": "FR96552100554",
    }  # fmt: skip
    person = save_customer(db, checked_details({"name": "Camille"}), actor="alice")
    for customer in (None, person):
        with pytest.raises(InvalidOperation, match="visit 7 is a company's"):
            invoice_buyer(customer, 7)
    company.city = None  # an older record, from before the checks
    with pytest.raises(InvalidOperation, match="city: Required"):
        invoice_buyer(company, 7)
