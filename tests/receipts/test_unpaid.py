"""Invoices issued unpaid ('à régler'): the payment recorded later, the list of what is owed,
and takings that count the money on the day it came, by its real method."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.errors import InvalidOperation, NotFound
from billing.ledger.chain import load, verify
from billing.ledger.receipts import close_with_receipt, issue_credit_note
from billing.ledger.unpaid import left_to_pay, payments_between, record_payment, unpaid_invoices
from billing.models import AuditEntry
from billing.reports import Period, takings
from tests.receipts.conftest import ORG, company_visit, walk_in

PARIS = ZoneInfo("Europe/Paris")
ISSUED = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)


def _due(db: Session, issued: datetime = ISSUED):  # type: ignore[no-untyped-def]
    return close_with_receipt(db, company_visit(db, issued), "due", actor="alice", organisation=ORG, now=issued)


def _pay(db: Session, document_id: int, method: str = "transfer", on: date = date(2026, 12, 5),
         today: date = date(2026, 12, 6)):  # type: ignore[no-untyped-def]  # fmt: skip
    payment = record_payment(db, document_id, method, on, actor="bob", today=today, tz=PARIS)
    db.commit()
    return payment


def test_an_invoice_left_to_pay_is_issued_for_its_due_date(db: Session) -> None:
    invoice = _due(db)
    content = load(invoice.content)
    assert (invoice.payment_method, content["payments"]) == ("due", {"due": 3300})
    assert content["invoice"]["due_date"] == "2026-12-26"
    assert verify(db) is None
    [row] = unpaid_invoices(db, today=date(2026, 12, 1))
    assert (row.document.reference, row.buyer, row.due_on, row.left_cents) == (
        "F-000001", "Atelier Bois & Fils SARL", date(2026, 12, 26), 3300)  # fmt: skip
    assert not row.overdue(date(2026, 12, 26)) and row.overdue(date(2026, 12, 27))


def test_a_paid_invoice_has_no_due_date_recorded(db: Session) -> None:
    invoice = close_with_receipt(db, company_visit(db), "card", actor="alice", organisation=ORG, now=ISSUED)
    assert "due_date" not in load(invoice.content)["invoice"]
    assert unpaid_invoices(db, today=date(2026, 12, 1)) == []


def test_overdue_invoices_come_first(db: Session) -> None:
    old = _due(db, datetime(2026, 10, 1, 9, 0, tzinfo=UTC))  # due 31 October
    recent = _due(db, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))  # due 20 December
    older = _due(db, datetime(2026, 9, 1, 9, 0, tzinfo=UTC))  # due 1 October
    order = [row.document.id for row in unpaid_invoices(db, today=date(2026, 11, 25))]
    assert order == [older.id, old.id, recent.id]


def test_recording_the_payment_settles_the_invoice_and_is_audited(any_db: Session) -> None:
    """On SQLite and PostgreSQL (the payment's date column, the row lock on the invoice)."""
    db = any_db
    invoice = _due(db)
    payment = _pay(db, invoice.id, "cheque", on=date(2026, 12, 5))
    assert (payment.method, payment.amount_cents, payment.paid_on) == ("cheque", 3300, date(2026, 12, 5))
    assert left_to_pay(db, invoice) == 0 and unpaid_invoices(db, today=date(2027, 1, 1)) == []
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "invoice_paid")).one()
    assert (entry.actor, entry.subject) == ("bob", "F-000001") and "2026-12-05" in (entry.detail or "")
    assert load(invoice.content)["payments"] == {"due": 3300}  # the invoice itself never changes
    assert verify(db) is None
    with pytest.raises(InvalidOperation, match="nothing left to pay"):
        _pay(db, invoice.id)


@pytest.mark.parametrize(("method", "on", "message"), [
    ("free", date(2026, 12, 5), "paid by transfer, cheque, card, cash"),
    ("due", date(2026, 12, 5), "paid by"),
    ("bitcoin", date(2026, 12, 5), "paid by"),
    ("transfer", date(2026, 12, 7), "and today \\(06/12/2026\\), not 07/12/2026"),  # tomorrow
    ("transfer", date(2026, 11, 25), "issue \\(26/11/2026\\)"),  # before the invoice
])  # fmt: skip
def test_a_wrong_payment_is_refused_and_says_why(db: Session, method: str, on: date, message: str) -> None:
    invoice = _due(db)
    with pytest.raises(InvalidOperation, match=message):
        _pay(db, invoice.id, method, on=on)
    db.rollback()
    assert left_to_pay(db, invoice) == 3300


def test_only_an_invoice_left_to_pay_takes_a_payment(db: Session) -> None:
    receipt = close_with_receipt(db, walk_in(db, ("mdf-3mm", "1")), "cash", actor="alice", organisation=ORG)
    paid = close_with_receipt(db, company_visit(db), "transfer", actor="alice", organisation=ORG)
    for document in (receipt, paid):
        with pytest.raises(InvalidOperation, match="nothing left to pay"):
            _pay(db, document.id, today=date(2099, 1, 1))
        db.rollback()
    with pytest.raises(NotFound):
        _pay(db, 999)


def test_a_walk_in_cannot_leave_without_paying(db: Session) -> None:
    visit_id = walk_in(db, ("mdf-3mm", "1"))
    with pytest.raises(InvalidOperation, match="only a company's invoice can be left to pay"):
        close_with_receipt(db, visit_id, "due", actor="alice", organisation=ORG)
    with pytest.raises(InvalidOperation, match="cannot be part of a split"):
        close_with_receipt(db, company_visit(db), {"card": Decimal("10"), "due": Decimal("23")},
                           actor="alice", organisation=ORG)  # fmt: skip
    assert verify(db) is None


def test_a_credit_note_on_an_unpaid_invoice_lowers_what_is_due(db: Session) -> None:
    invoice = _due(db)
    note = issue_credit_note(db, invoice.id, "une plaque de trop", actor="alice", lines={1: Decimal("1")},
                             method="cash", now=ISSUED)  # fmt: skip
    assert load(note.content)["payments"] == {"due": -600}  # nothing was paid: no cash goes back
    assert left_to_pay(db, invoice) == 2700
    assert _pay(db, invoice.id).amount_cents == 2700
    whole = _due(db)
    issue_credit_note(db, whole.id, "annulée", actor="alice", now=ISSUED)
    assert unpaid_invoices(db, today=date(2027, 6, 1)) == []


def test_takings_count_an_unpaid_invoice_on_the_day_it_is_paid_by_its_method(db: Session) -> None:
    invoice = _due(db)
    november, december = Period.month(2026, 11, PARIS), Period.month(2026, 12, PARIS)
    assert takings(db, november, by="payment") == [] and takings(db, november) == []
    _pay(db, invoice.id, "transfer", on=date(2026, 12, 5))
    assert [(t.bucket, t.key, t.cents) for t in takings(db, december, by="payment")] == [
        ("2026-12-05", "transfer", 3300)]  # fmt: skip
    assert [(t.bucket, t.key, t.cents) for t in takings(db, december, by="category", step="month")] == [
        ("2026-12", "company", 3300)]  # fmt: skip
    assert sum(t.cents for t in takings(db, december, by="machine")) == 3300
    assert takings(db, november, by="payment") == []
    assert payments_between(db, date(2026, 12, 1), date(2027, 1, 1)) == {"transfer": 3300}
    assert payments_between(db, date(2026, 12, 6), date(2027, 1, 1)) == {}


def test_a_credit_note_after_the_payment_gives_the_money_back_as_it_came(db: Session) -> None:
    invoice = _due(db)
    _pay(db, invoice.id, "cheque")
    note = issue_credit_note(db, invoice.id, "formation annulée", actor="alice", now=ISSUED)
    assert load(note.content)["payments"] == {"cheque": -3300}
