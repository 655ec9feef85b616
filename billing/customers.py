"""Erasing a person: their personal data go, the money and the hash chain stay.

    erase_customer(db, "C-4F2A9", actor="camille")   # a customer record and its visits' names
    erase_visit_name(db, 12, actor="camille")         # a named walk-in with no customer record
    keep_person(db, pepper, 12, "0A1B2C3D", actor="camille")  # the visitor's own badge finds them again

Documents hash a pseudonymous reference, never a name, so ``fabmeter ledger verify`` stays
green. French law keeps an invoice's buyer for ten years: a customer with a younger invoice is
not erased (the error says until when).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.credentials import badge_hash, checked_badge_uid
from billing.errors import InvalidOperation, NotFound
from billing.ledger.documents import Document
from billing.models import Customer, Visit, utcnow

INVOICE_RETENTION = timedelta(days=10 * 366)


def erase_customer(db: Session, ref: str, *, actor: str) -> Customer:
    customer = db.scalar(select(Customer).where(Customer.ref == ref))
    if customer is None:
        raise NotFound(f"no customer with reference {ref!r}")
    _refuse_if_invoiced(db, customer)
    customer.name = customer.email = customer.company_name = None
    customer.company_address = customer.siren = customer.badge_hash = None
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
        raise NotFound(f"no visit {visit_id}")
    digest = badge_hash(pepper, checked_badge_uid(badge_uid))
    owner = db.scalar(select(Customer).where(Customer.badge_hash == digest))
    customer = visit.customer or owner or Customer(ref=_fresh_ref(db), name=_name_of(visit))
    if owner is not None and owner is not customer:
        raise InvalidOperation(f"this badge is already customer {owner.ref}'s own badge")
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
        raise NotFound(f"no visit {visit_id}")
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
            f"customer {customer.ref} has an invoice of {newest.date().isoformat()}: its buyer must "
            f"be kept until {until}"
        )
