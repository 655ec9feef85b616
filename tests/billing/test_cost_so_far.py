"""The live "cost so far" of a print counts the filament used so far, as a cancelled print pays."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from billing.charges import cost_so_far
from billing.models import UsageSession
from billing.visits import open_visit

SESSION = "33333333-3333-4333-8333-333333333333"


def running_print(db: Session, pepper: str, progress_milli: int | None) -> UsageSession:
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    session = UsageSession(
        id=SESSION, agent="pi-printer", machine_id="printer-1", visit_id=visit.id, auth="none",
        state="open", session_s=1800, busy_s=1800, job_s=1800, filament_mm_milli=0,
        job="benchy.gcode", job_state="running", job_estimate_mm_milli=10_000_000,
        job_progress_milli=progress_milli,
    )  # fmt: skip
    db.add(session)
    db.flush()
    return session


def test_half_a_print_costs_its_time_and_half_its_filament(db: Session, pepper: str) -> None:
    session = running_print(db, pepper, progress_milli=50_000)
    # 30 min at 0,25 €/15 min = 0,50 €; 5 m of 1.75 mm PLA = 14.91 g at 0,06 €/g = 0,89 €
    assert cost_so_far(db, session) == Decimal("1.39")


def test_before_any_progress_only_time_counts(db: Session, pepper: str) -> None:
    session = running_print(db, pepper, progress_milli=None)
    assert cost_so_far(db, session) == Decimal("0.50")


def test_a_session_nobody_claimed_has_no_cost_yet(db: Session, pepper: str) -> None:
    session = running_print(db, pepper, progress_milli=50_000)
    session.visit_id = None
    session.visit = None
    assert cost_so_far(db, session) is None
