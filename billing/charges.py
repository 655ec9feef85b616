"""From a usage session to charge lines on its visit, with the tariff version they used.

    charge_session(db, session)      # an ended session with a visit → lines, state 'priced'
    cost_so_far(db, session, Running(elapsed_s=300, working=True))   # Decimal for the live board
    attach_session(db, session_id, visit_id, actor="alice")   # a print nobody badged for
    price_ended(db)                  # at start: every ended session with a visit and no lines yet
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import InvalidOperation, NotFound
from billing.models import THOUSAND, ChargeLine, Material, TariffVersion, UsageSession, Visit
from billing.money import euros, to_cents
from billing.pricing import Line, MaterialPrice, TimeTariff, Usage, price_session, total
from billing.tariffs import current_version, unit_name
from billing.visits import get_visit

log = logging.getLogger(__name__)
MILLICENTS = Decimal(100_000)


def time_tariff(version: TariffVersion) -> TimeTariff:
    return TimeTariff(
        unit_price=euros(version.unit_price_cents), unit_s=version.unit_s,
        minimum_units=version.minimum_units, start_fee=euros(version.start_fee_cents),
        grace_s=version.grace_s, basis=version.basis, material_applies=version.material_applies,
        unit_name=unit_name(version.unit_s),
    )  # fmt: skip


def material_price(material: Material) -> MaterialPrice:
    return MaterialPrice(material.name, material.diameter_mm, material.density_g_cm3, material.price_per_gram)


def session_material(db: Session, session: UsageSession) -> Material | None:
    """The material the job named, else the one loaded on the machine."""
    if session.material_code:
        named = db.scalars(select(Material).where(Material.code == session.material_code)).first()
        if named is not None:
            return named
    return session.machine.material


def usage_of(session: UsageSession) -> Usage:
    return Usage(session.session_s, session.busy_s, session.job_s, session.filament_mm)


def price_lines(db: Session, session: UsageSession) -> tuple[TariffVersion | None, tuple[Line, ...]]:
    if session.visit is None:
        return None, ()
    version = current_version(db, session.machine_id, session.visit.category_id)
    if version is None:
        return None, ()
    material = session_material(db, session)
    lines = price_session(
        usage_of(session), time_tariff(version),
        material_price(material) if material else None, session.machine.name,
    )  # fmt: skip
    return version, lines


def charge_session(db: Session, session: UsageSession) -> list[ChargeLine]:
    """Price an ended session onto its visit once; later calls change nothing."""
    if session.state != "ended":
        return []
    if session.visit is None and session.visit_id is not None:
        # set by id on an object not flushed yet: the relationship does not follow on its own
        session.visit = db.get(Visit, session.visit_id)
    if session.visit is None:
        return []
    if session.visit.state == "closed":
        _after_close(db, session)
        return []
    version, lines = price_lines(db, session)
    if version is None:
        audit(db, "billing", "no_tariff", f"session {session.id}",
              f"{session.machine_id} has no tariff for category {session.visit.category.code}")  # fmt: skip
    material = session_material(db, session)
    rows = [line_row(session, version, line, material) for line in lines]
    db.add_all(rows)
    session.state = "priced"
    return rows


def _after_close(db: Session, session: UsageSession) -> None:
    """A closed visit never receives a charge: the usage is kept, unclaimed, for staff to bill anew."""
    visit = session.visit
    assert visit is not None
    session.after_close_of, session.visit, session.visit_id = visit.id, None, None
    audit(db, "billing", "usage_after_close", f"session {session.id}",
          f"ended after visit {visit.id} closed: left for staff to attach to a new visit")  # fmt: skip
    log.warning("session %s ended after visit %s closed; left unclaimed", session.id, visit.id)


def line_row(session: UsageSession, version: TariffVersion | None, line: Line, material: Material | None) -> ChargeLine:
    assert session.visit_id is not None
    return ChargeLine(
        visit_id=session.visit_id, session_id=session.id, kind=line.kind,
        description=line.description, quantity_milli=int(line.quantity * THOUSAND),
        unit=line.unit, unit_price_millicents=int(line.unit_price * MILLICENTS),
        amount_cents=to_cents(line.amount), tariff_version_id=version.id if version else None,
        material_id=material.id if material and line.kind == "material" else None,
        created_by="billing",
    )  # fmt: skip


@dataclass(frozen=True)
class Running:
    """What the board knows of an open session now, beyond its last checkpoint."""

    elapsed_s: int = 0  # since the session started, as the agent counts it
    working: bool = False  # the machine runs now (busy, printing)


def running_usage(usage: Usage, now: Running) -> Usage:
    """The usage of an open session as of now: its whole elapsed time, and at least one second of
    busy and job time while the machine works, so a minimum or a start fee shows as soon as it is due."""
    worked = 1 if now.working else 0
    return Usage(max(usage.session_s, now.elapsed_s), max(usage.busy_s, worked), max(usage.job_s, worked),
                 usage.filament_mm)  # fmt: skip


def cost_so_far(db: Session, session: UsageSession, now: Running | None = None) -> Decimal | None:
    """What the session would cost if it ended now, minimums and start fees included; None when
    nobody is attached.

    A print still running counts the filament it has used so far: the slicer's estimate for the
    whole file times the progress, as a cancelled print would pay.
    """
    if session.visit is None:
        return None
    version = current_version(db, session.machine_id, session.visit.category_id)
    if version is None:
        return None
    material = session_material(db, session)
    usage = usage_of(session)
    if session.state == "open" and now is not None:
        usage = running_usage(usage, now)
    running = _running_filament_mm(session)
    if running:
        usage = Usage(usage.session_s, usage.busy_s, usage.job_s, usage.filament_mm + running)
    lines = price_session(usage, time_tariff(version), material_price(material) if material else None,
                          session.machine.name)  # fmt: skip
    return total(lines)


def _running_filament_mm(session: UsageSession) -> Decimal:
    if session.job_state != "running" or not session.job_estimate_mm_milli or not session.job_progress_milli:
        return Decimal(0)
    return (Decimal(session.job_estimate_mm_milli) * Decimal(session.job_progress_milli)
            / (THOUSAND * THOUSAND * 100))  # fmt: skip


def attach_session(db: Session, session_id: str, visit_id: int, *, actor: str) -> UsageSession:
    """Give an unclaimed session (a job started with no badge) to a visit; price it if ended."""
    session = db.get(UsageSession, session_id)
    if session is None:
        raise NotFound("no session %(session)s", session=session_id)
    if session.visit_id is not None:
        raise InvalidOperation("session %(session)s already belongs to visit %(visit)s", session=session_id, visit=session.visit_id)
    visit = get_visit(db, visit_id)
    if visit.state == "closed":
        raise InvalidOperation("visit %(visit)s is closed", visit=visit_id)
    session.visit = visit
    audit(db, actor, "attach_session", f"session {session_id}", f"visit {visit_id}")
    charge_session(db, session)
    db.flush()
    return session


def price_ended(db: Session) -> int:
    """Price every ended session that has a visit and no lines yet (run at start); how many."""
    ended = db.scalars(select(UsageSession).where(UsageSession.state == "ended", UsageSession.visit_id.is_not(None)))
    priced = 0
    for session in ended:
        charge_session(db, session)
        priced += session.state == "priced"
    return priced


def unassigned_sessions(db: Session) -> list[UsageSession]:
    """Sessions no visit pays for yet (no badge or PIN, or usage after a close), newest first."""
    query = (
        select(UsageSession)
        .where(UsageSession.visit_id.is_(None))
        .order_by(UsageSession.started_at.desc(), UsageSession.id)
    )
    return list(db.scalars(query))
