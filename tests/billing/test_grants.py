"""Billing decides who pays: a visit in an agent's session_started is a claim, checked against
billing's own grants; a closed visit never receives a charge."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from billing.allowlists import build, plans
from billing.charges import attach_session, unassigned_sessions
from billing.config import BillingConfig
from billing.ingest import Inbox, Received
from billing.models import AuditEntry, UsageSession, utcnow
from billing.visits import open_visit, visit_total
from broker.messages import SessionStarted
from tests.billing.agentsim import AgentSim


@pytest.fixture
def inbox(engine: Engine, db: Session) -> Inbox:
    return Inbox(sessionmaker(engine, expire_on_commit=False))


def commit(inbox: Inbox, sim: AgentSim) -> None:
    inbox.commit([Received(sim.topic, payload, i) for i, (_s, payload) in enumerate(sim.payloads)])


def visit_id(db: Session, pepper: str) -> int:
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    db.commit()
    return visit.id


def long_session(sim: AgentSim, started: SessionStarted) -> None:
    sim.event("session_started", started)
    sim.session_ended("badge_out", 36_000, 36_000)  # ten hours


def refusals(db: Session) -> list[str]:
    return list(db.scalars(select(AuditEntry.detail).where(AuditEntry.action == "claim_refused")))


def test_an_online_claim_without_billings_answer_charges_nobody(inbox: Inbox, db: Session, pepper: str) -> None:
    """Finding 2: session_started {auth: online, visit: 7} with no credential ever presented."""
    victim = visit_id(db, pepper)
    sim = AgentSim("pi-laser", "laser-1")
    long_session(sim, SessionStarted(auth="online", visit=str(victim)))
    commit(inbox, sim)
    db.expire_all()
    assert visit_total(db, victim) == 0
    assert [s.id for s in unassigned_sessions(db)] == [sim.session]
    assert "billing gave no auth answer" in refusals(db)[0]


def test_a_grant_counts_only_for_its_machine_and_its_agent(inbox: Inbox, db: Session, pepper: str) -> None:
    victim = visit_id(db, pepper)
    other_machine = AgentSim("pi-laser", "laser-2")
    AgentSim("pi-laser", "laser-1", session=other_machine.session).granted(db, victim)
    long_session(other_machine, SessionStarted(auth="online", visit=str(victim)))
    other_agent = AgentSim("pi-printer", "printer-1")
    AgentSim("pi-laser", "printer-1", session=other_agent.session).granted(db, victim)
    long_session(other_agent, SessionStarted(auth="online", visit=str(victim)))
    commit(inbox, other_machine)
    commit(inbox, other_agent)
    db.expire_all()
    assert visit_total(db, victim) == 0 and len(unassigned_sessions(db)) == 2


def test_billings_own_grant_decides_the_visit_not_the_agents_claim(inbox: Inbox, db: Session, pepper: str) -> None:
    granted, claimed = visit_id(db, pepper), visit_id(db, pepper)
    sim = AgentSim("pi-laser", "laser-1")
    sim.granted(db, granted)
    sim.session_started(visit=str(claimed))
    sim.session_ended("badge_out", 700, 601)
    commit(inbox, sim)
    db.expire_all()
    assert visit_total(db, claimed) == 0 and visit_total(db, granted) == Decimal("5.50")


def test_an_offline_acceptance_counts_only_with_an_entry_billing_published(
    inbox: Inbox, db: Session, pepper: str
) -> None:
    visit = visit_id(db, pepper)
    rules = BillingConfig()
    plan = plans(db, rules=rules, agents={"pi-laser"})["pi-laser"]
    published = build(db, "pi-laser", plan, pepper=pepper, rules=rules)  # records what it publishes
    [entry] = [e for e in published.entries if e.visit == str(visit)]
    db.commit()
    held = AgentSim("pi-laser", "laser-1")
    held.event("session_started", SessionStarted(auth="offline", visit=str(visit), credential=entry.credential))
    held.session_ended("badge_out", 700, 601)
    forged = AgentSim("pi-laser", "laser-1", stream=held.stream, seq=held.seq, payloads=held.payloads)
    forged.new_session()
    forged.event("session_started", SessionStarted(auth="offline", visit=str(visit), credential="ab" * 32))
    forged.session_ended("badge_out", 36_000, 36_000)
    elsewhere = AgentSim("pi-printer", "printer-1")  # the entry was never published to pi-printer
    elsewhere.event("session_started", SessionStarted(auth="offline", visit=str(visit), credential=entry.credential))
    elsewhere.session_ended("badge_out", 36_000, 36_000)
    commit(inbox, forged)
    commit(inbox, elsewhere)
    db.expire_all()
    assert visit_total(db, visit) == Decimal("5.50")
    assert sorted(s.id for s in unassigned_sessions(db)) == sorted([forged.session, elsewhere.session])


def test_usage_after_a_visit_closed_is_kept_for_a_new_document(inbox: Inbox, db: Session, pepper: str) -> None:
    """Finding 2, second half: a closed visit's total never changes; the late usage waits for staff."""
    closed = visit_id(db, pepper)
    sim = AgentSim("pi-laser", "laser-1")
    sim.granted(db, closed)
    sim.session_started(visit=str(closed))
    commit(inbox, sim)
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit  # the next visit
    from billing.models import Visit

    old = db.get(Visit, closed)
    assert old is not None
    old.state, old.closed_at = "closed", utcnow()
    db.commit()
    sim.session_ended("badge_out", 700, 601)
    commit(inbox, sim)
    db.expire_all()
    assert visit_total(db, closed) == 0
    [late] = unassigned_sessions(db)
    assert late.id == sim.session and late.after_close_of == closed and late.state == "ended"
    attach_session(db, late.id, visit.id, actor="alice")
    db.commit()
    assert visit_total(db, visit.id) == Decimal("5.50") and visit_total(db, closed) == 0
    session = db.get(UsageSession, sim.session)
    assert session is not None and session.state == "priced"


def test_a_print_claimed_before_its_start_reached_billing_goes_to_the_claiming_visit(
    inbox: Inbox, db: Session, pepper: str
) -> None:
    """The badge's answer (a grant for the running session) can beat the agent's backlog to billing."""
    claimer = visit_id(db, pepper)
    sim = AgentSim("pi-printer", "printer-1")
    sim.granted(db, claimer)
    db.commit()
    sim.session_started(visit=None, auth="none")
    sim.session_ended("job_end", 3600, 3600, 3600)
    commit(inbox, sim)
    db.expire_all()
    assert visit_total(db, claimer) > 0 and refusals(db) == []
