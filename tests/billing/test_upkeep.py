"""Upkeep counters come from the ledger's sessions; a service resets them and stays in the log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from billing.errors import InvalidOperation
from billing.models import UsageSession
from billing.upkeep import counters, due, record_service, service_log, set_thresholds

NOW = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def session(db: Session, at: datetime, busy_h: float, *, job: str | None = "completed", mm: int = 0) -> None:
    db.add(UsageSession(id=str(uuid.uuid4()), agent="pi-laser", machine_id="laser-1", started_at=at, state="ended",
                        busy_s=int(busy_h * 3600), job_state=job, filament_mm_milli=mm * 1000))  # fmt: skip
    db.flush()


def test_busy_hours_jobs_and_filament_count_until_a_service_resets_them(db: Session) -> None:
    session(db, NOW, 120, mm=2_000_000)
    session(db, NOW + timedelta(days=1), 90, job="cancelled")
    session(db, NOW + timedelta(days=2), 1, job=None)  # a session without a job: busy time, no job
    machine = set_thresholds(db, "laser-1", hours=200, jobs=None, metres=1000, actor="admin")
    now = counters(db, "laser-1")
    assert (now.busy_h, now.jobs, now.filament_m, now.since) == (211, 2, 2000, None)
    assert due(machine, now) == ["entretien toutes les 200 h : 211 h", "entretien tous les 1000 m de filament : 2000 m"]
    done = record_service(db, "laser-1", "tube changé", actor="alice", now=NOW + timedelta(days=3))
    assert (done.busy_s, done.jobs, done.by) == (211 * 3600, 2, "alice")
    after = counters(db, "laser-1")
    assert (after.busy_s, after.jobs, after.since) == (0, 0, NOW + timedelta(days=3)) and due(machine, after) == []
    session(db, NOW + timedelta(days=4), 5)
    assert counters(db, "laser-1").busy_h == 5
    assert [s.what for s in service_log(db, "laser-1")] == ["tube changé"]


@pytest.mark.parametrize(("hours", "what", "problem"), [(0, "x", "between 1"), (10, " ", "say what")])
def test_bad_thresholds_and_empty_services_are_refused(db: Session, hours: int, what: str, problem: str) -> None:
    with pytest.raises(InvalidOperation, match=problem):
        set_thresholds(db, "laser-1", hours=hours, jobs=None, metres=None, actor="admin")
        record_service(db, "laser-1", what, actor="alice")
