"""Invoices issued unpaid ('à régler avant le …'), their payments recorded later at the desk.

    unpaid_invoices(db, today=date(2027, 1, 5))         # overdue first, then by due date
    record_payment(db, doc.id, "transfer", date(2027, 1, 4), actor="alice", today=..., tz=...)
    payments_between(db, date(2027, 1, 1), date(2027, 2, 1))   # {'transfer': 3300}

The invoice itself is never changed: its payment is a row of its own (``InvoicePayment``),
dated the day the money came. What is due is the invoice's total less its credit notes; one
payment settles it. Takings count such an invoice on the day it is paid, by its real method.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import InvalidOperation, NotFound
from billing.ledger.chain import load, parse_utc
from billing.ledger.documents import Document, InvoicePayment
from billing.ledger.receipts import credit_notes_of
from billing.models import utcnow
from billing.money import euros, format_eur
from billing.payments import DUE

LATER_METHODS = ("transfer", "cheque", "card", "cash")  # how an invoice is paid later


@dataclass(frozen=True)
class Unpaid:
    """An invoice waiting for its payment: what is left to pay, and by when."""

    document: Document
    buyer: str
    due_on: date
    left_cents: int

    def overdue(self, today: date) -> bool:
        return today > self.due_on


def left_to_pay(db: Session, document: Document) -> int:
    """Cents still due on an invoice issued unpaid (its total less its credit notes), 0 once paid."""
    if document.payment_method != DUE or payment_of(db, document.id) is not None:
        return 0
    return document.total_cents + sum(note.total_cents for note in credit_notes_of(db, document.id))


def payment_of(db: Session, document_id: int) -> InvoicePayment | None:
    return db.scalar(select(InvoicePayment).where(InvoicePayment.document_id == document_id))


def unpaid_invoices(db: Session, *, today: date) -> list[Unpaid]:
    """Every invoice with something left to pay: overdue first (oldest due date first), then the rest."""
    query = select(Document).where(Document.kind == "invoice", Document.payment_method == DUE)
    rows = []
    for document in db.scalars(query.order_by(Document.id)):
        left = left_to_pay(db, document)
        if left > 0:
            content = load(document.content)
            buyer = (content.get("buyer") or {}).get("name") or document.customer_ref or "?"
            rows.append(Unpaid(document, buyer, date.fromisoformat(content["invoice"]["due_date"]), left))
    return sorted(rows, key=lambda row: (not row.overdue(today), row.due_on, row.document.id))


def record_payment(
    db: Session, document_id: int, method: str, paid_on: date, *, actor: str, today: date,
    tz: tzinfo, now: datetime | None = None,
) -> InvoicePayment:  # fmt: skip
    """The money of an unpaid invoice came on ``paid_on`` by ``method``: recorded and audited.

    Refused for a document that is not an unpaid invoice, twice, for a day after ``today`` or
    before the invoice was issued (both days in ``tz``, the organisation's zone).
    """
    document = db.get(Document, document_id, with_for_update=True)
    if document is None:
        raise NotFound("no document %(document)s", document=document_id)
    if method not in LATER_METHODS:
        raise InvalidOperation("an invoice is paid by %(choices)s, not %(method)r", choices=", ".join(LATER_METHODS), method=method)
    left = left_to_pay(db, document)
    if left <= 0:
        raise InvalidOperation("%(document)s has nothing left to pay", document=document.reference)
    issued = parse_utc(load(document.content)["issued_at"]).astimezone(tz).date()
    if not issued <= paid_on <= today:
        raise InvalidOperation(
            "the payment of %(document)s is dated between its issue (%(issued)s) and today (%(today)s), not %(paid_on)s",
            document=document.reference, issued=issued.strftime("%d/%m/%Y"), today=today.strftime("%d/%m/%Y"),
            paid_on=paid_on.strftime("%d/%m/%Y"),
        )
    payment = InvoicePayment(document=document, method=method, amount_cents=left, paid_on=paid_on,
                             recorded_at=now or utcnow(), recorded_by=actor)  # fmt: skip
    db.add(payment)
    db.flush()
    audit(db, actor, "invoice_paid", document.reference,
          f"{format_eur(euros(left))} by {method} on {paid_on.isoformat()}")  # fmt: skip
    return payment


def payments_between(db: Session, start: date, end: date) -> dict[str, int]:
    """Cents received per method for invoices paid later, on days in [start, end)."""
    sums: dict[str, int] = defaultdict(int)
    for payment in paid_between(db, start, end):
        sums[payment.method] += payment.amount_cents
    return dict(sorted(sums.items()))


def paid_between(db: Session, start: date, end: date) -> list[InvoicePayment]:
    query = select(InvoicePayment).where(InvoicePayment.paid_on >= start, InvoicePayment.paid_on < end)
    return list(db.scalars(query.order_by(InvoicePayment.paid_on, InvoicePayment.id)))
