"""Erasing a person: their personal data go, the money and the hash chain stay.

    erase_customer(db, "C-4F2A9", actor="camille")   # a customer record and its visits' names
    erase_visit_name(db, 12, actor="camille")         # a named walk-in with no customer record

Documents hash a pseudonymous reference, never a name, so ``fabmeter ledger verify`` stays
green. French law keeps an invoice's buyer for ten years: a customer with a younger invoice is
not erased (the error says until when).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
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
    customer.company_address = customer.siren = None
    customer.erased_at = utcnow()
    for visit in db.scalars(select(Visit).where(Visit.customer_id == customer.id)):
        visit.label = f"Visiteur {visit.id}"
    audit(db, actor, "erase_customer", f"customer {customer.ref}", "personal data erased")
    db.flush()
    return customer


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
