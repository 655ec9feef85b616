"""Filament reported after its job ended (``job_corrected``): charged once while the visit is open.

    correct_filament(db, session, data)     # the FilamentCorrection recorded, or None when replayed
    pending_corrections(db)                 # those a closed visit could not take, for the desk
    mark_dealt(db, correction_id, actor="alice")

OctoPrint may analyse a file only after the print ended: the agent then sends the run's filament
in a ``job_corrected`` event. Each run is corrected once (``(session, job_key)`` is unique), and
only by what was not counted yet. A session not priced yet simply counts it; a priced one gets a
material line on its visit while that visit is open; a closed visit is never changed — the
correction waits on the desk until staff deal with it (audited).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.charges import line_row, material_price, session_material
from billing.errors import InvalidOperation, NotFound
from billing.models import (
    THOUSAND,
    ChargeLine,
    FilamentCorrection,
    TariffVersion,
    UsageSession,
    utcnow,
)
from billing.pricing import material_line
from billing.tariffs import current_version
from broker.messages import JobCorrected

log = logging.getLogger(__name__)


def correct_filament(db: Session, session: UsageSession, data: JobCorrected) -> FilamentCorrection | None:
    """Apply a late filament figure to ``session`` once; a replay of the same run's correction is None."""
    query = select(FilamentCorrection).where(
        FilamentCorrection.session_id == session.id, FilamentCorrection.job_key == data.job_key
    )
    if db.scalars(query).first() is not None:
        return None
    total = int(Decimal(str(data.filament_mm)) * THOUSAND)
    added = max(total - session.filament_mm_milli, 0)
    row = FilamentCorrection(
        session_id=session.id, job_key=data.job_key, job=data.job, filament_mm_milli=total,
        added_mm_milli=added, source=data.filament_source, state="applied", visit_id=session.visit_id,
        received_at=utcnow(),
    )  # fmt: skip
    session.material_code = session.material_code or data.material
    visit = session.visit
    if added and session.state == "priced" and visit is not None and visit.state == "closed":
        row.state = "pending"
        audit(db, "billing", "filament_after_close", f"session {session.id}",
              f"{Decimal(added) / THOUSAND} mm of {data.job} came after visit {visit.id} closed: not charged")  # fmt: skip
        log.warning("late filament for session %s after visit %s closed; left for staff", session.id, visit.id)
    elif added:
        session.filament_mm_milli += added
        if session.state == "priced":  # an open visit: the material is charged now
            line = _material_line(db, session, Decimal(added) / THOUSAND)
            row.line_id = line.id if line is not None else None
    db.add(row)
    return row


def _material_line(db: Session, session: UsageSession, added_mm: Decimal) -> ChargeLine | None:
    assert session.visit is not None
    version = _version_used(db, session)
    material = session_material(db, session)
    if version is None or not version.material_applies or material is None:
        return None
    line = material_line(added_mm, material_price(material))
    if line is None:
        return None
    row = line_row(session, version, replace(line, description=f"{line.description} (après la fin du travail)"),
                   material)  # fmt: skip
    db.add(row)
    db.flush()
    return row


def _version_used(db: Session, session: UsageSession) -> TariffVersion | None:
    """The tariff version the session's lines were priced with (else the current one)."""
    for line in session.lines:
        if line.tariff_version is not None:
            return line.tariff_version
    assert session.visit is not None
    return current_version(db, session.machine_id, session.visit.category_id)


def pending_corrections(db: Session) -> list[FilamentCorrection]:
    query = select(FilamentCorrection).where(FilamentCorrection.state == "pending")
    return list(db.scalars(query.order_by(FilamentCorrection.received_at)))


def mark_dealt(db: Session, correction_id: int, *, actor: str) -> FilamentCorrection:
    """Staff handled a correction a closed visit could not take (a new visit, a refusal): audited."""
    row = db.get(FilamentCorrection, correction_id)
    if row is None:
        raise NotFound("no filament correction %(correction)s", correction=correction_id)
    if row.state != "pending":
        raise InvalidOperation(
            "filament correction %(correction)s is %(state)s, not pending", correction=correction_id, state=row.state
        )
    row.state, row.dealt_by, row.dealt_at = "dealt", actor, utcnow()
    audit(db, actor, "filament_correction_dealt", f"session {row.session_id}",
          f"{row.added_mm} mm of {row.job}, visit {row.visit_id}")  # fmt: skip
    return row
