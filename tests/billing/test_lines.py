"""Money rules of an open visit: a discount never beyond the total, lines taken back with a reason."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from billing.catalogue import add_item
from billing.errors import InvalidOperation
from billing.lines import corrections, reduce_line, remove_line
from billing.models import AuditEntry, ChargeLine
from billing.visits import add_discount, close_visit, get_visit, open_visit, visit_total


def _visit(db: Session, pepper: str, *items: tuple[str, str]) -> int:
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="alice").visit
    for code, quantity in items:
        add_item(db, visit.id, code, Decimal(quantity), actor="alice")
    db.commit()
    return visit.id


def test_a_discount_larger_than_the_total_is_refused(db: Session, pepper: str) -> None:
    visit = _visit(db, pepper, ("plywood-3mm", "1"))  # 4,50 €
    with pytest.raises(InvalidOperation, match=r"more than the visit's total \(4,50 €\)"):
        add_discount(db, visit, Decimal("76.81"), "erreur", actor="alice")
    add_discount(db, visit, Decimal("4.50"), "offert", actor="alice")
    assert visit_total(db, visit) == Decimal("0.00")
    with pytest.raises(InvalidOperation, match="more than"):
        add_discount(db, visit, Decimal("0.01"), "encore", actor="alice")


def test_a_line_is_removed_with_a_reason_and_audited(db: Session, pepper: str) -> None:
    visit = _visit(db, pepper, ("plywood-3mm", "2"), ("mdf-3mm", "1"))  # 9,00 + 3,00
    lines = open_visit_lines(db, visit)
    with pytest.raises(InvalidOperation, match="reason"):
        remove_line(db, lines[1].id, " ", actor="bob")
    remove_line(db, lines[1].id, "saisi par erreur", actor="bob")
    db.commit()
    assert visit_total(db, visit) == Decimal("9.00")
    [entry] = corrections(db, visit)
    assert (entry.actor, entry.action) == ("bob", "remove_line")
    assert entry.detail == "MDF 3 mm 600×300 (1 plaque, 3,00 €): saisi par erreur"


def test_a_line_is_reduced_to_a_smaller_quantity(db: Session, pepper: str) -> None:
    visit = _visit(db, pepper, ("plywood-3mm", "3"))  # 13,50 €
    [line] = open_visit_lines(db, visit)
    reduce_line(db, line.id, Decimal("2"), "une plaque rendue", actor="alice")
    db.commit()
    assert (line.quantity, line.amount) == (Decimal(2), Decimal("9.00"))
    assert "→" in (db.query(AuditEntry).filter_by(action="reduce_line").one().detail or "")
    for bad in ("0", "2", "5", "1.0005"):
        with pytest.raises(InvalidOperation, match="new quantity"):
            reduce_line(db, line.id, Decimal(bad), "x", actor="alice")


def test_a_line_under_a_discount_cannot_take_the_total_below_zero(db: Session, pepper: str) -> None:
    visit = _visit(db, pepper, ("plywood-3mm", "1"), ("mdf-3mm", "1"))  # 4,50 + 3,00
    add_discount(db, visit, Decimal("7.00"), "bénévole", actor="alice")
    plywood, _mdf, discount = open_visit_lines(db, visit)
    with pytest.raises(InvalidOperation, match="would be -4,00 €"):
        remove_line(db, plywood.id, "erreur", actor="alice")
    remove_line(db, discount.id, "erreur", actor="alice")
    remove_line(db, plywood.id, "erreur", actor="alice")
    assert visit_total(db, visit) == Decimal("3.00")


def test_a_closed_visit_is_corrected_by_a_credit_note_only(db: Session, pepper: str) -> None:
    visit = _visit(db, pepper, ("plywood-3mm", "1"))
    [line] = open_visit_lines(db, visit)
    close_visit(db, visit, "cash", actor="alice")
    with pytest.raises(InvalidOperation, match="credit note"):
        remove_line(db, line.id, "erreur", actor="alice")


def open_visit_lines(db: Session, visit_id: int) -> list[ChargeLine]:
    return list(get_visit(db, visit_id).lines)
