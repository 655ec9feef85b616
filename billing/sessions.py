"""Apply an agent's usage events, in seq order, to usage sessions (and price ended ones).

    apply_event(db, "pi-printer", event, now)    # returns the session it touched

Every effect is idempotent: totals only grow, a session is priced once, so replaying an
event (a resend, a redelivery after a crash) changes nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from billing.audit import audit
from billing.charges import charge_session
from billing.filament import correct_filament
from billing.grants import claimed_visit
from billing.models import THOUSAND, Machine, UsageSession, rejected
from billing.pricing import filament_used_mm
from broker import topics
from broker.messages import (
    JobCorrected,
    JobEnded,
    JobStarted,
    OfflineAuth,
    SessionEnded,
    SessionStarted,
    SessionTotals,
    UsageEvent,
    encode,
)

log = logging.getLogger(__name__)


def event_time(event: UsageEvent, now: datetime) -> datetime:
    """The event's wall time when the agent's clock was synced, else when billing got it."""
    if event.wall_synced and event.wall_ns > 0:
        return datetime.fromtimestamp(event.wall_ns / 1e9, UTC)
    return now


def ensure_machine(db: Session, agent: str, machine_id: str) -> Machine:
    """The machine, registered on first sight (staff name it and set tariffs later)."""
    machine = db.get(Machine, machine_id)
    if machine is None:
        machine = Machine(id=machine_id, name=machine_id, kind="other", agent=agent)
        db.add(machine)
        db.flush()
        log.info("machine %s of agent %s registered on first event", machine_id, agent)
    elif machine.agent is None:
        machine.agent = agent
    return machine


def _known_sessions(db: Session) -> dict[str, UsageSession]:
    """Usage sessions this transaction has touched (forgotten with the transaction)."""
    transaction = db.get_transaction()
    cached = db.info.get("usage_sessions")
    if cached is None or cached[0] is not transaction:
        cached = db.info["usage_sessions"] = (transaction, {})
    known: dict[str, UsageSession] = cached[1]
    return known


def session_for(db: Session, agent: str, event: UsageEvent, now: datetime) -> UsageSession:
    # One transaction applies many events of a few sessions: keep them at hand, so that looking
    # one up does not flush the previous event's changes each time (most of a backlog's cost).
    known = _known_sessions(db)
    session = known.get(event.session)
    if session is not None:
        return session
    with db.no_autoflush:
        session = db.get(UsageSession, event.session)
    if session is None:
        ensure_machine(db, agent, event.machine)
        session = UsageSession(
            id=event.session, agent=agent, machine_id=event.machine, auth="none",
            state="open", started_at=event_time(event, now), session_s=0, busy_s=0, job_s=0,
            filament_mm_milli=0,
        )  # fmt: skip
        db.add(session)
    known[event.session] = session
    return session


def _grow(session: UsageSession, session_s: int, busy_s: int, job_s: int) -> None:
    session.session_s = max(session.session_s, session_s)
    session.busy_s = max(session.busy_s, busy_s)
    session.job_s = max(session.job_s, job_s)


def _started(db: Session, agent: str, session: UsageSession, data: SessionStarted, event: UsageEvent,
             now: datetime) -> None:  # fmt: skip
    session.auth = data.auth
    session.credential = data.credential
    session.started_at = event_time(event, now)
    if session.visit_id is not None or session.after_close_of is not None:
        return  # attached by staff before the start arrived, or already found too late
    visit, why = claimed_visit(db, agent, event.machine, session.id, data)
    if visit is None and data.auth != "none":
        audit(db, f"agent:{agent}", "claim_refused", f"session {session.id}",
              f"{data.auth} session for visit {data.visit} left unclaimed: {why}")  # fmt: skip
    session.visit = visit


def _job_started(session: UsageSession, data: JobStarted) -> None:
    session.job = data.job
    session.job_state = "running"
    if data.estimate_mm is not None:
        session.job_estimate_mm_milli = int(Decimal(str(data.estimate_mm)) * THOUSAND)


def _job_ended(session: UsageSession, data: JobEnded) -> None:
    estimate = session.job_estimate_mm_milli
    used = filament_used_mm(
        measured_mm=None if data.filament_mm is None else Decimal(str(data.filament_mm)),
        estimate_mm=None if estimate is None else Decimal(estimate) / THOUSAND,
        outcome=data.outcome,
        progress=None if data.progress is None else Decimal(str(data.progress)),
    )
    session.job = data.job
    session.job_state = data.outcome
    session.job_progress_milli = None if data.progress is None else int(Decimal(str(data.progress)) * THOUSAND)
    session.filament_mm_milli += int(used * THOUSAND)
    session.material_code = data.material or session.material_code
    session.job_s = max(session.job_s, data.job_s)
    session.expected_end_at = None


def _ended(db: Session, session: UsageSession, data: SessionEnded, event: UsageEvent, now: datetime) -> None:
    _grow(session, data.session_s, data.busy_s, data.job_s)
    if session.state != "open":
        return
    session.state = "ended"
    session.end_reason = data.reason
    ended = event_time(event, now)
    if ended < session.started_at:  # the agent's clock was stepped back mid-session
        ended = session.started_at + timedelta(seconds=session.session_s)
    session.ended_at = ended
    session.expected_end_at = None
    if session.job_state == "running":
        session.job_state = None
    charge_session(db, session)


def _refuse(db: Session, agent: str, event: UsageEvent, reason: str) -> None:
    log.warning("event %s of %s refused: %s", event.seq, agent, reason)
    db.add(rejected(topics.agent_events(agent), encode(event), reason))


def apply_event(db: Session, agent: str, event: UsageEvent, now: datetime) -> UsageSession | None:
    """Apply one event; returns the session it changed (None for an offline-auth record)."""
    machine = db.get(Machine, event.machine)
    if machine is not None and machine.agent not in (None, agent):
        # the broker's ACL keeps agents on their own topics; this keeps them on their own machines
        _refuse(db, agent, event, f"machine {event.machine} belongs to agent {machine.agent}, not {agent}")
        return None
    data = event.data
    if isinstance(data, OfflineAuth):
        verdict = "accepted" if data.accepted else "refused"
        audit(db, f"agent:{agent}", "offline_auth", f"machine {event.machine}",
              f"{data.kind} {verdict} ({data.reason}) visit {data.visit}")  # fmt: skip
        return None
    session = session_for(db, agent, event, now)
    if session.agent != agent or session.machine_id != event.machine:
        # and on their own sessions: a session id is no secret (it is on the live board)
        _refuse(db, agent, event, f"session {session.id} was opened by {session.agent} on "
                                  f"{session.machine_id}, not by {agent} on {event.machine}")  # fmt: skip
        return None
    if isinstance(data, SessionStarted):
        _started(db, agent, session, data, event, now)
    elif isinstance(data, SessionTotals):
        _grow(session, data.session_s, data.busy_s, data.job_s)
    elif isinstance(data, JobStarted):
        _job_started(session, data)
    elif isinstance(data, JobEnded):
        _job_ended(session, data)
    elif isinstance(data, JobCorrected):
        correct_filament(db, session, data)
    elif isinstance(data, SessionEnded):
        _ended(db, session, data, event, now)
    return session
