"""Who pays for a session: only billing's own decisions, recorded when billing makes them.

    grant_online(db, "pi-laser", request, visit_id=12)   # billing answered yes to this request
    claimed_visit(db, "pi-laser", "laser-1", session_id, started)   # (Visit | None, why)

A visit id in an agent's ``session_started`` is a claim to check, never a fact: an online session
goes to the visit of the grant billing gave that agent for that machine and that session id; an
offline one to the visit of an allow-list entry billing published to that agent, for that digest
and a machine the entry names. A job running unclaimed (a print started without badging) goes to
the visit of a credential billing accepted for that very session (``claim_running``). Anything else
stays unclaimed until staff attach it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from billing.allowlists import held_entry
from billing.audit import audit
from billing.models import AuthGrant, UsageSession, Visit
from broker.messages import AuthRequest, SessionStarted


def visit_number(text: str | None) -> int | None:
    """A visit id as the wire carries it ("12"); None for anything else ("²" passes isdigit)."""
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


def grant_online(db: Session, agent: str, request: AuthRequest, visit_id: int) -> None:
    """Record billing's yes to ``request`` (the caller commits it with the answer)."""
    if db.get(AuthGrant, (agent, request.session)) is None:
        db.add(AuthGrant(agent=agent, session_id=request.session, machine_id=request.machine, visit_id=visit_id))


def claimed_visit(
    db: Session, agent: str, machine: str, session_id: str, started: SessionStarted
) -> tuple[Visit | None, str]:
    """The visit billing itself decided for this session, or None and why the claim fails."""
    if started.auth == "online":
        grant = db.get(AuthGrant, (agent, session_id))
        if grant is None:
            return None, "billing gave no auth answer for this session"
        if grant.machine_id != machine:
            return None, f"billing's answer was for {grant.machine_id}, not {machine}"
        return db.get(Visit, grant.visit_id), "online answer"
    if started.auth == "offline":
        visit_id = visit_number(started.visit)
        row = held_entry(db, agent, started.credential or "") if visit_id is not None else None
        if row is None or row.visit_id != visit_id or machine not in row.machines.split():
            return None, "no allow-list entry billing gave this agent matches"
        return db.get(Visit, row.visit_id), "allow-list entry"
    grant = db.get(AuthGrant, (agent, session_id))  # claimed while running, before its start arrived
    if grant is not None and grant.machine_id == machine:
        return db.get(Visit, grant.visit_id), "claimed while running"
    return None, "nobody identified"


def claim_running(db: Session, agent: str, request: AuthRequest, visit_id: int) -> str | None:
    """A credential billing accepted, presented for a session that already runs: give the session to
    the visit if nobody has it yet; else why not (the caller refuses). None also for a new session."""
    session = db.get(UsageSession, request.session)
    if session is None:
        return None  # a new session, or one whose start billing has not seen yet: the grant says
    if session.agent != agent or session.machine_id != request.machine:
        return f"session {session.id} is not one of {agent}'s on {request.machine}"
    if session.visit_id is not None and session.visit_id != visit_id:
        return f"{request.machine} is in use by another visit"
    if session.state != "open" or session.after_close_of is not None:
        return f"the use of {request.machine} has ended: ask at the desk"
    if session.visit_id is None:
        session.visit = db.get(Visit, visit_id)
        audit(db, f"agent:{agent}", "claim_running", f"session {session.id}", f"visit {visit_id}")
    return None
