from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from billing.catalogue import add_item
from billing.credentials import bind_badge, find_badge, find_pin
from billing.errors import InvalidOperation
from billing.models import AuditEntry, Credential, TariffVersion, UsageSession
from billing.tariffs import category_by_code, current_version, price_summary, set_tariff
from billing.visits import (
    add_discount,
    close_visit,
    list_open_visits,
    mark_waiting,
    open_visit,
    visit_total,
)


def test_check_in_gives_a_pin_that_opens_only_that_visit(db: Session, pepper: str) -> None:
    a = open_visit(db, pepper=pepper, category="walk-in", actor="alice")
    b = open_visit(db, pepper=pepper, category="member", name="Camille", actor="alice")
    db.commit()
    assert a.pin is not None and len(a.pin) == 6 and a.pin.isdigit()
    assert a.visit.label == f"Visiteur {a.visit.id}" and b.visit.label == "Camille"
    found = find_pin(db, pepper, a.pin)
    assert found is not None and found.visit_id == a.visit.id
    stored = db.get(Credential, found.id)
    assert stored is not None and a.pin not in stored.secret_hash
    assert b.pin is not None
    other = find_pin(db, pepper, b.pin)
    assert other is not None and other.visit_id == b.visit.id


def test_items_and_discount_sum_to_the_total(db: Session, pepper: str) -> None:
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="alice").visit
    add_item(db, visit.id, "plywood-3mm", Decimal("2"), actor="alice")
    add_item(db, visit.id, "mdf-3mm", Decimal("0.5"), actor="alice")
    add_discount(db, visit.id, Decimal("1.25"), "chute réutilisée", actor="alice")
    db.commit()
    assert visit_total(db, visit.id) == Decimal("9.25")  # 9,00 + 1,50 - 1,25
    assert [line.amount for line in visit.lines] == [Decimal("9.00"), Decimal("1.50"), Decimal("-1.25")]
    assert db.query(AuditEntry).filter_by(action="discount").one().detail == "-1,25 €: chute réutilisée"


def test_discount_needs_a_reason(db: Session, pepper: str) -> None:
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="alice").visit
    with pytest.raises(InvalidOperation, match="reason"):
        add_discount(db, visit.id, Decimal("1"), "  ", actor="alice")


def test_a_running_print_keeps_the_visit_open_until_pickup(db: Session, pepper: str) -> None:
    opened = datetime(2026, 11, 26, 21, 0, tzinfo=UTC)
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="alice", now=opened).visit
    ends = datetime(2026, 11, 27, 2, 40, tzinfo=UTC)
    db.add(UsageSession(id="6f0c2a3e-0000-4000-8000-000000000001", agent="pi-printer",
                        machine_id="printer-1", visit=visit, job="boat.gcode", expected_end_at=ends))
    db.commit()
    with pytest.raises(InvalidOperation, match="waiting for the print, ends"):
        close_visit(db, visit.id, "card", actor="alice")
    mark_waiting(db, visit.id, actor="alice")
    [row] = list_open_visits(db)
    assert row.state == "waiting"
    assert row.waiting[0].describe(ZoneInfo("Europe/Paris")) == "waiting for the print, ends 03:40"
    assert row.waiting[0].describe() == "waiting for the print, ends 02:40 UTC"


def test_closing_stops_the_credentials(db: Session, pepper: str) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", badge_uid="0a1b2c", actor="alice")
    close_visit(db, checked.visit.id, "cash", actor="alice")
    db.commit()
    assert checked.pin is not None and find_pin(db, pepper, checked.pin) is None
    badge = find_badge(db, pepper, "0A1B2C")
    assert badge is not None and not badge.active
    assert checked.visit.payment_method == "cash" and checked.visit.closed_at is not None
    with pytest.raises(InvalidOperation, match="closed"):
        close_visit(db, checked.visit.id, "cash", actor="alice")
    # the loan badge can now go to the next visitor
    nxt = open_visit(db, pepper=pepper, category="member", actor="alice", with_pin=False)
    assert bind_badge(db, pepper, nxt.visit, "0A1B2C").visit_id == nxt.visit.id


def test_a_badge_cannot_serve_two_open_visits(db: Session, pepper: str) -> None:
    open_visit(db, pepper=pepper, category="walk-in", badge_uid="AA", actor="alice")
    with pytest.raises(InvalidOperation, match="already bound"):
        open_visit(db, pepper=pepper, category="walk-in", badge_uid="aa", actor="alice")


def test_tariff_edit_adds_a_version_and_never_changes_one(db: Session) -> None:
    walk_in = category_by_code(db, "walk-in")
    first = current_version(db, "laser-1", walk_in.id)
    assert first is not None and price_summary(first) == "0,50 €/min"
    second = set_tariff(db, "laser-1", "walk-in", unit_price_cents=60, actor="admin")
    db.commit()
    current = current_version(db, "laser-1", walk_in.id)
    assert current is not None and current.id == second.id and current.version == first.version + 1
    first.unit_price_cents = 1
    with pytest.raises(InvalidOperation, match="immutable"):
        db.flush()
    db.rollback()
    assert db.get(TariffVersion, first.id).unit_price_cents == 50  # type: ignore[union-attr]


def test_printer_summary_names_the_material(db: Session) -> None:
    from billing.models import Machine

    printer = db.get(Machine, "printer-1")
    assert printer is not None
    version = current_version(db, "printer-1", category_by_code(db, "walk-in").id)
    assert version is not None
    assert price_summary(version, printer.material) == "0,25 €/15 min + 0,06 €/g PLA"
    assert current_version(db, "laser-1", category_by_code(db, "repair-cafe").id) is None
