"""Closing with one or two payment methods, a free visit, and credit notes for some lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from billing.errors import InvalidOperation
from billing.ledger.chain import closure_figures, verify
from billing.ledger.receipts import close_with_receipt, issue_credit_note
from billing.models import Visit
from billing.reports import Period, takings, totals_by_key
from billing.visits import add_discount
from tests.receipts.conftest import ORG, walk_in

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def test_a_split_payment_adds_up_and_each_method_is_counted(db: Session) -> None:
    visit = walk_in(db, ("plywood-3mm", "2"), ("mdf-3mm", "1"))  # 12,00 €
    document = close_with_receipt(db, visit, {"card": Decimal("10"), "cash": Decimal("2")}, actor="alice",
                                  organisation=ORG, now=NOW)  # fmt: skip
    content = json.loads(document.content)
    assert content["payments"] == {"card": 1000, "cash": 200} and document.payment_method == "card"
    closed = db.get(Visit, visit)
    assert closed is not None and closed.payment_method == "card+cash"
    closed.closed_at = NOW  # close_visit takes the machine's clock (until it takes a ``now``)
    db.commit()
    assert verify(db) is None
    figures = closure_figures(db, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert figures["totals"] == {"card": 1000, "cash": 200} and figures["total_cents"] == 1200
    period = Period(NOW - timedelta(days=1), NOW + timedelta(days=1), UTC)
    assert totals_by_key(takings(db, period, by="payment")) == {"card": 1000, "cash": 200}


def test_payments_that_do_not_add_up_close_nothing(db: Session) -> None:
    visit = walk_in(db, ("plywood-3mm", "2"))  # 9,00 €
    for payments, message in (({"card": Decimal("5"), "cash": Decimal("3")}, "add up to 8,00 €"),
                              ({"card": Decimal("9"), "cash": Decimal("0")}, "more than 0,00"),
                              ("free", "not free"), ("bitcoin", "payment method")):  # fmt: skip
        with pytest.raises(InvalidOperation, match=message):
            close_with_receipt(db, visit, payments, actor="alice", organisation=ORG)  # type: ignore[arg-type]
    reopened = db.get(Visit, visit)
    assert reopened is not None and reopened.state == "open"


def test_a_free_visit_closes_with_a_receipt_of_zero_paid_free(db: Session) -> None:
    visit = walk_in(db, ("plywood-3mm", "1"))
    add_discount(db, visit, Decimal("4.50"), "atelier offert", actor="alice")
    db.commit()
    document = close_with_receipt(db, visit, "cash", actor="alice", organisation=ORG)
    assert (document.reference, document.total_cents, document.payment_method) == (
        "R-000001",
        0,
        "free",
    )


def test_a_visit_below_zero_is_refused_at_the_close_too(db: Session) -> None:
    visit = walk_in(db, ("plywood-3mm", "1"))
    row = db.get(Visit, visit)
    assert row is not None
    row.lines[0].amount_cents = -7681  # as if a line had been written around billing's rules
    db.commit()
    with pytest.raises(InvalidOperation, match="never costs less than 0,00"):
        close_with_receipt(db, visit, "card", actor="alice", organisation=ORG)


def test_one_plate_of_three_is_credited_then_the_rest(db: Session) -> None:
    visit = walk_in(db, ("training-laser", "1"), ("plywood-3mm", "3"))  # line 2: 3 × 4,50
    original = close_with_receipt(db, visit, "cash", actor="alice", organisation=ORG)
    note = issue_credit_note(
        db, original.id, "une plaque rendue", actor="bob", lines={1: Decimal("1")}
    )
    content = json.loads(note.content)
    assert note.reference == "A-000001" and note.total_cents == -450
    assert [
        (line["quantity"], line["amount_cents"], line["of_line"]) for line in content["lines"]
    ] == [("-1", -450, 1)]
    with pytest.raises(InvalidOperation, match="between 0 and 2 can be given back"):
        issue_credit_note(db, original.id, "trop", actor="bob", lines={1: Decimal("3")})
    rest = issue_credit_note(db, original.id, "annulation", actor="bob")
    assert rest.reference == "A-000002" and rest.total_cents == -(original.total_cents - 450)
    with pytest.raises(InvalidOperation, match="nothing of R-000001 is left"):
        issue_credit_note(db, original.id, "encore", actor="bob")
    assert verify(db) is None


def test_a_credit_note_never_gives_back_more_than_was_paid(db: Session) -> None:
    visit = walk_in(db, ("plywood-3mm", "2"))
    add_discount(db, visit, Decimal("3"), "bénévole", actor="alice")
    db.commit()
    original = close_with_receipt(db, visit, "card", actor="alice", organisation=ORG)  # 6,00 €
    with pytest.raises(InvalidOperation, match="6,00 € of R-000001 is left"):
        issue_credit_note(db, original.id, "les deux plaques", actor="bob", lines={0: Decimal("2")})
    with pytest.raises(InvalidOperation, match="would give back -3,00 €"):
        issue_credit_note(db, original.id, "la remise seule", actor="bob", lines={1: Decimal("1")})
    whole = issue_credit_note(db, original.id, "annulation", actor="bob")
    assert whole.total_cents == -600
