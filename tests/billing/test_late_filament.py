"""Filament that comes after its job ended (``job_corrected``): charged once while the visit is open,
never on a closed visit — staff see it on the desk instead.

Seed tariff of printer-1 for walk-ins: 0,25 € per started 15 min of job time after a 5-minute
grace, PLA at 0,06 €/g (1,75 mm, 1,24 g/cm³): 4250 mm is 12,676 g, 0,76 €.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from billing.errors import InvalidOperation
from billing.filament import mark_dealt, pending_corrections
from billing.ingest import Inbox, Received
from billing.models import AuditEntry, FilamentCorrection, UsageSession
from billing.visits import close_visit, open_visit, visit_total
from tests.billing.agentsim import AgentSim


@pytest.fixture
def inbox(engine: Engine, db: Session) -> Inbox:
    return Inbox(sessionmaker(engine, expire_on_commit=False))


def printed(db: Session, pepper: str, *, filament_mm: float | None = None) -> tuple[AgentSim, int]:
    """A 45-minute print for a walk-in whose job ended before OctoPrint had its estimate."""
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    db.commit()
    sim = AgentSim("pi-printer", "printer-1")
    sim.granted(db, visit.id)
    sim.session_started(visit=str(visit.id))
    sim.job_started("big.gcode")
    sim.job_ended("big.gcode", "completed", 2700, filament_mm=filament_mm)
    sim.session_ended("job_end", 2800, 2700, 2700)
    return sim, visit.id


def send(inbox: Inbox, sim: AgentSim, first: int = 1) -> None:
    inbox.commit([Received(sim.topic, p, s) for s, p in sim.payloads if s >= first])


def test_late_filament_is_charged_on_the_open_visit_once(inbox: Inbox, db: Session, pepper: str) -> None:
    sim, visit_id = printed(db, pepper)
    send(inbox, sim)
    db.expire_all()
    assert visit_total(db, visit_id) == Decimal("0.75")  # time only: no estimate yet
    sim.job_corrected("big.gcode", 4250.0)
    send(inbox, sim, first=5)
    send(inbox, sim, first=5)  # a redelivery
    sim.job_corrected("big.gcode", 4250.0)  # the same run's correction under a new seq
    send(inbox, sim, first=6)
    db.expire_all()
    assert visit_total(db, visit_id) == Decimal("1.51")
    session = db.get(UsageSession, sim.session)
    assert session is not None and session.filament_mm == Decimal(4250)
    [correction] = db.scalars(select(FilamentCorrection)).all()
    assert (correction.state, correction.line_id is not None) == ("applied", True)
    assert "après la fin du travail" in correction.visit.lines[-1].description if correction.visit else False


def test_a_correction_only_adds_what_was_not_counted(inbox: Inbox, db: Session, pepper: str) -> None:
    sim, visit_id = printed(db, pepper, filament_mm=4250.0)
    sim.job_corrected("big.gcode", 4250.0)
    send(inbox, sim)
    db.expire_all()
    assert visit_total(db, visit_id) == Decimal("1.51")


def test_a_correction_before_the_session_is_priced_counts_in_it(inbox: Inbox, db: Session, pepper: str) -> None:
    """The session is still unclaimed: the material is priced when staff attach it."""
    from billing.charges import attach_session

    sim = AgentSim("pi-printer", "printer-1")
    sim.session_started(visit=None, auth="none")
    sim.job_started("big.gcode")
    sim.job_ended("big.gcode", "completed", 2700)
    sim.session_ended("job_end", 2800, 2700, 2700)
    sim.job_corrected("big.gcode", 4250.0)
    send(inbox, sim)
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    attach_session(db, sim.session, visit.id, actor="alice")
    db.commit()
    assert [line.amount for line in visit.lines] == [Decimal("0.75"), Decimal("0.76")]


def test_after_the_close_nothing_is_charged_and_staff_see_it(inbox: Inbox, db: Session, pepper: str) -> None:
    sim, visit_id = printed(db, pepper)
    send(inbox, sim)
    db.expire_all()
    close_visit(db, visit_id, "cash", actor="alice")
    db.commit()
    sim.job_corrected("big.gcode", 4250.0)
    send(inbox, sim, first=5)
    send(inbox, sim, first=5)
    db.expire_all()
    assert visit_total(db, visit_id) == Decimal("0.75")
    [pending] = pending_corrections(db)
    assert (pending.visit_id, pending.added_mm, pending.job) == (visit_id, Decimal(4250), "big.gcode")
    mark_dealt(db, pending.id, actor="alice")
    db.commit()
    assert pending_corrections(db) == []
    with pytest.raises(InvalidOperation, match="is dealt, not pending"):
        mark_dealt(db, pending.id, actor="bob")
    actions = db.scalars(select(AuditEntry.action).where(AuditEntry.actor == "alice")).all()
    assert "filament_correction_dealt" in actions
