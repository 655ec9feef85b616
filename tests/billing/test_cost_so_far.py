"""The live "cost so far" of a print counts the filament used so far, as a cancelled print pays."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from billing.charges import Running, cost_so_far, running_usage
from billing.models import UsageSession
from billing.pricing import Usage
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


def laser_session(db: Session, pepper: str, **usage: int) -> UsageSession:
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    session = UsageSession(id=SESSION, agent="pi-laser", machine_id="laser-1", visit_id=visit.id, state="open",
                           **usage)  # fmt: skip
    db.add(session)
    db.flush()
    return session


def test_the_minimum_shows_as_soon_as_the_laser_fires(db: Session, pepper: str) -> None:
    # seed: the laser costs a walk-in 0,50 €/min of busy time, 5 minutes at least
    session = laser_session(db, pepper)
    assert cost_so_far(db, session, Running(elapsed_s=20, working=False)) == Decimal("0.00")
    assert cost_so_far(db, session, Running(elapsed_s=20, working=True)) == Decimal("2.50")


def test_between_checkpoints_the_elapsed_time_counts(db: Session, pepper: str) -> None:
    # seed: the sewing machine costs a walk-in 0,10 €/min of session time after 5 free minutes
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    session = UsageSession(id=SESSION, agent="pi-sewing", machine_id="sewing-1", visit_id=visit.id, state="open",
                           session_s=240)  # fmt: skip
    db.add(session)
    db.flush()
    assert cost_so_far(db, session) == Decimal("0.00")  # 4 min at the last checkpoint: still free
    assert cost_so_far(db, session, Running(elapsed_s=601)) == Decimal("1.10")  # 11 started minutes


@pytest.mark.parametrize(("usage", "now", "expected"), [
    (Usage(10, 0, 0), Running(5, False), Usage(10, 0, 0)),
    (Usage(10, 0, 0), Running(50, False), Usage(50, 0, 0)),
    (Usage(10, 0, 0), Running(50, True), Usage(50, 1, 1)),
    (Usage(90, 80, 70), Running(50, True), Usage(90, 80, 70)),
])  # fmt: skip
def test_running_usage_never_goes_below_the_checkpoint(usage: Usage, now: Running, expected: Usage) -> None:
    assert running_usage(usage, now) == expected
