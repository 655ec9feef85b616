"""Upkeep counters per machine, from the ingested sessions, and the service log that resets them.

    counters(db, machine)         # Counters(busy_s=..., jobs=..., filament_mm_milli=..., since=...)
    due(machine, counters(...))   # ['entretien toutes les 200 h : 212 h'] when a threshold is passed
    record_service(db, "laser-1", "tube changé, miroirs nettoyés", actor="alice")

Counters count sessions started since the last service: busy time (on a laser, the tube's hours),
jobs that ended, filament. They come from the ledger, where every session is stored once under
its agent-made id, so an agent restarting or sending an event again cannot count twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import InvalidOperation, NotFound
from billing.models import Machine, MachineService, UsageSession, utcnow
from broker.messages import JOB_OUTCOMES


@dataclass(frozen=True)
class Counters:
    busy_s: int
    jobs: int
    filament_mm_milli: int
    since: datetime | None  # the last service, None if never serviced

    @property
    def busy_h(self) -> int:
        return self.busy_s // 3600

    @property
    def filament_m(self) -> int:
        return self.filament_mm_milli // 1_000_000


def last_service(db: Session, machine_id: str) -> MachineService | None:
    query = select(MachineService).where(MachineService.machine_id == machine_id)
    return db.scalars(query.order_by(MachineService.at.desc(), MachineService.id.desc())).first()


def counters(db: Session, machine_id: str) -> Counters:
    last = last_service(db, machine_id)
    query = select(
        func.coalesce(func.sum(UsageSession.busy_s), 0),
        func.count(UsageSession.job_state).filter(UsageSession.job_state.in_(JOB_OUTCOMES)),
        func.coalesce(func.sum(UsageSession.filament_mm_milli), 0),
    ).where(UsageSession.machine_id == machine_id)
    if last is not None:
        query = query.where(UsageSession.started_at >= last.at)
    busy, jobs, filament = db.execute(query).one()
    return Counters(int(busy), int(jobs), int(filament), last.at if last else None)


def due(machine: Machine, now: Counters) -> list[str]:
    """One French line per threshold passed ("entretien toutes les 200 h : 212 h")."""
    warnings = []
    if machine.service_every_h and now.busy_h >= machine.service_every_h:
        warnings.append(f"entretien toutes les {machine.service_every_h} h : {now.busy_h} h")
    if machine.service_every_jobs and now.jobs >= machine.service_every_jobs:
        warnings.append(f"entretien tous les {machine.service_every_jobs} travaux : {now.jobs}")
    if machine.service_every_m and now.filament_m >= machine.service_every_m:
        warnings.append(f"entretien tous les {machine.service_every_m} m de filament : {now.filament_m} m")
    return warnings


def set_thresholds(db: Session, machine_id: str, *, hours: int | None, jobs: int | None, metres: int | None,
                   actor: str) -> Machine:  # fmt: skip
    machine = db.get(Machine, machine_id)
    if machine is None:
        raise NotFound("no machine %(machine)s", machine=machine_id)
    for name, value in (("hours", hours), ("jobs", jobs), ("metres", metres)):
        if value is not None and not 0 < value < 1_000_000:
            raise InvalidOperation("upkeep threshold %(name)s must be between 1 and 999999, not %(value)s", name=name, value=value)
    machine.service_every_h, machine.service_every_jobs, machine.service_every_m = hours, jobs, metres
    audit(db, actor, "upkeep_thresholds", f"machine {machine_id}", f"{hours} h, {jobs} jobs, {metres} m")
    db.flush()
    return machine


def record_service(db: Session, machine_id: str, what: str, *, actor: str, now: datetime | None = None) -> MachineService:
    """Log a service (who, what, when) with the counters it closes; the counters start again."""
    if db.get(Machine, machine_id) is None:
        raise NotFound("no machine %(machine)s", machine=machine_id)
    what = what.strip()
    if not what:
        raise InvalidOperation("say what was done (e.g. « tube changé »)")
    closed = counters(db, machine_id)
    row = MachineService(machine_id=machine_id, at=now or utcnow(), by=actor, what=what[:2000],
                         busy_s=closed.busy_s, jobs=closed.jobs, filament_mm_milli=closed.filament_mm_milli)  # fmt: skip
    db.add(row)
    audit(db, actor, "record_service", f"machine {machine_id}", what[:200])
    db.flush()
    return row


def service_log(db: Session, machine_id: str, limit: int = 50) -> list[MachineService]:
    query = select(MachineService).where(MachineService.machine_id == machine_id)
    return list(db.scalars(query.order_by(MachineService.at.desc(), MachineService.id.desc()).limit(limit)))
