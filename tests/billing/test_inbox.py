"""Ingest at the database level: idempotence, ordering, gaps and bad messages (no broker)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from billing.ingest import Inbox, Received
from billing.models import ChargeLine, InboxEvent, RejectedMessage, StreamPosition, UsageSession
from billing.visits import open_visit, visit_total
from broker.messages import Ack, Command
from tests.billing.agentsim import AgentSim


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def inbox(engine: Engine, db: Session) -> Inbox:
    return Inbox(sessionmaker(engine, expire_on_commit=False), gap_wait_s=2.0, clock=CLOCK)


CLOCK = Clock()


def laser_session(db: Session, pepper: str) -> tuple[AgentSim, int]:
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    db.commit()
    sim = AgentSim("pi-laser", "laser-1")
    sim.granted(db, visit.id)
    sim.session_started(visit=str(visit.id))
    sim.checkpoint(60, 30)
    sim.session_ended("badge_out", 700, 601)  # 601 s busy → 11 started minutes at 0,50
    return sim, visit.id


def received(sim: AgentSim, seqs: list[int] | None = None) -> list[Received]:
    chosen = [p for s, p in sim.payloads if seqs is None or s in seqs]
    return [Received(sim.topic, payload, i) for i, payload in enumerate(chosen)]


def test_a_session_becomes_lines_and_the_ack_covers_it(inbox: Inbox, db: Session, pepper: str) -> None:
    sim, visit_id = laser_session(db, pepper)
    result = inbox.commit(received(sim))
    assert result.acks == [("pi-laser", Ack(sim.stream, 3))]
    db.expire_all()
    assert visit_total(db, visit_id) == Decimal("5.50")
    session = db.get(UsageSession, sim.session)
    assert session is not None and session.state == "priced" and session.busy_s == 601


def test_the_same_event_twice_changes_nothing(inbox: Inbox, db: Session, pepper: str) -> None:
    sim, visit_id = laser_session(db, pepper)
    inbox.commit(received(sim) + received(sim))
    again = inbox.commit(received(sim))
    assert again.acks == [("pi-laser", Ack(sim.stream, 3))]  # duplicates are re-acked
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(InboxEvent)) == 3
    assert db.scalar(select(func.count()).select_from(ChargeLine)) == 1
    assert visit_total(db, visit_id) == Decimal("5.50")


def test_events_out_of_order_wait_for_the_hole(inbox: Inbox, db: Session, pepper: str) -> None:
    sim, visit_id = laser_session(db, pepper)
    first = inbox.commit(received(sim, [1, 3]))
    assert first.acks == [("pi-laser", Ack(sim.stream, 1))]
    db.expire_all()
    assert visit_total(db, visit_id) == 0  # the end is stored but not applied before seq 2
    second = inbox.commit(received(sim, [2]))
    assert second.acks == [("pi-laser", Ack(sim.stream, 3))]
    db.expire_all()
    assert visit_total(db, visit_id) == Decimal("5.50")


def test_a_hole_asks_for_resend_after_the_wait(inbox: Inbox, db: Session, pepper: str) -> None:
    sim, _ = laser_session(db, pepper)
    for _ in range(3):
        sim.checkpoint(800)
    inbox.commit(received(sim, [1, 2, 5, 6]))
    assert inbox.resends() == []
    CLOCK.now += 2.5
    assert inbox.resends() == [("pi-laser", Command("resend", sim.stream, 3, 4))]
    assert inbox.resends() == []  # not asked again at once
    inbox.commit(received(sim, [3, 4]))
    CLOCK.now += 60
    assert inbox.resends() == []


def test_position_survives_a_restart(engine: Engine, db: Session, pepper: str) -> None:
    sim, _ = laser_session(db, pepper)
    Inbox(sessionmaker(engine)).commit(received(sim, [1, 3]))
    fresh = Inbox(sessionmaker(engine))
    assert fresh.positions() == [("pi-laser", Ack(sim.stream, 1))]
    assert fresh.commit(received(sim, [2])).acks == [("pi-laser", Ack(sim.stream, 3))]
    position = db.get(StreamPosition, ("pi-laser", sim.stream))
    assert position is not None and position.upto == 3


def test_bad_messages_are_recorded_and_counted(inbox: Inbox, db: Session) -> None:
    bad = [
        Received("fabmeter/v1/agent/pi-x/events", b"\xff\xfe", 1),
        Received("fabmeter/v1/agent/pi-x/events", b'{"v": 1, "stream": 3}', 2),
        Received("fabmeter/v1/agent/PI/events", b"{}", 3),
    ]
    result = inbox.commit(bad)
    assert result.rejected == 3 and result.acks == []
    reasons = db.scalars(select(RejectedMessage.reason).order_by(RejectedMessage.id)).all()
    assert "not UTF-8 JSON" in reasons[0]
    assert "UsageEvent.stream" in reasons[1]
    assert "agent id 'PI'" in reasons[2]


def test_unclaimed_print_is_priced_when_staff_attach_it(inbox: Inbox, db: Session, pepper: str) -> None:
    from billing.charges import attach_session, unassigned_sessions

    sim = AgentSim("pi-printer", "printer-1")
    sim.session_started(visit=None, auth="none")
    sim.job_started("boat.gcode", estimate_mm=10000)
    sim.job_ended("boat.gcode", "cancelled", 2700, progress=42.5)
    sim.session_ended("job_end", 2800, 2700, 2700)
    inbox.commit(received(sim))
    db.expire_all()
    [session] = unassigned_sessions(db)
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    attach_session(db, session.id, visit.id, actor="alice")
    db.commit()
    # 45 min = 3 quarters at 0,25 + 4250 mm of PLA (12.676 g × 0,06 = 0,76)
    assert [line.amount for line in visit.lines] == [Decimal("0.75"), Decimal("0.76")]
    assert visit.lines[0].tariff_version_id is not None


def test_a_backlog_of_checkpoints_keeps_the_highest_totals(inbox: Inbox, db: Session, pepper: str) -> None:
    """Only the last of a run of checkpoints is applied, but a lower one never wins."""
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    db.commit()
    sim = AgentSim("pi-laser", "laser-1")
    sim.granted(db, visit.id)
    sim.session_started(visit=str(visit.id))
    for busy in (30, 90, 400, 120):  # the last is lower: an agent must never shrink the totals
        sim.checkpoint(busy + 10, busy)
    inbox.commit(received(sim))
    db.expire_all()
    session = db.get(UsageSession, sim.session)
    assert session is not None and session.busy_s == 400 and session.session_s == 410


def test_an_event_that_raises_is_rejected_and_acked_and_the_others_are_priced(
    inbox: Inbox, db: Session, pepper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever one event raises while it is applied (here a fault planted in apply_event), it is
    recorded with its topic, bytes and reason, its stream moves past it, the rest is priced."""
    import billing.ingest

    sim, visit_id = laser_session(db, pepper)
    poison = AgentSim("pi-printer", "printer-1")
    poison.session_started(visit=None, auth="none")
    real = billing.ingest.apply_event

    def planted(db: Session, agent: str, event: object, now: object) -> object:
        if agent == "pi-printer":
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return real(db, agent, event, now)  # type: ignore[arg-type]

    monkeypatch.setattr(billing.ingest, "apply_event", planted)
    result = inbox.commit(received(poison) + received(sim))
    assert sorted(result.acks) == [("pi-laser", Ack(sim.stream, 3)), ("pi-printer", Ack(poison.stream, 1))]
    db.expire_all()
    assert visit_total(db, visit_id) == Decimal("5.50")
    [bad] = db.scalars(select(RejectedMessage)).all()
    assert bad.topic == poison.topic and bad.payload == poison.payloads[0][1]
    assert "OverflowError" in bad.reason and db.get(UsageSession, poison.session) is None


def test_a_rejected_payload_is_kept_cut(inbox: Inbox, db: Session) -> None:
    inbox.commit([Received("fabmeter/v1/agent/pi-x/events", b"{" + b"x" * 100_000, 1)])
    [bad] = db.scalars(select(RejectedMessage)).all()
    assert len(bad.payload) == 4096 and "more than 65536" in bad.reason


def test_two_sessions_of_one_visit_in_one_batch_are_both_priced(inbox: Inbox, db: Session, pepper: str) -> None:
    """A van back from a village brings several sessions of one visit at once: each is priced."""
    sim, visit_id = laser_session(db, pepper)
    for _ in range(2):
        sim.new_session()
        sim.granted(db, visit_id)
        sim.session_started(visit=str(visit_id))
        sim.session_ended("badge_out", 700, 601)
    inbox.commit(received(sim))
    db.expire_all()
    sessions = db.scalars(select(UsageSession)).all()
    assert [s.state for s in sessions] == ["priced"] * 3
    assert visit_total(db, visit_id) == Decimal("16.50")


@pytest.mark.parametrize("split", [[1, 2, 3, 4, 5, 6, 7], [1, 2], [3, 4, 5, 6, 7]])
def test_every_ended_session_is_priced_once_whatever_the_batching(
    engine: Engine, db: Session, pepper: str, split: list[int]
) -> None:
    sim, visit_id = laser_session(db, pepper)
    sim.new_session()
    sim.granted(db, visit_id)
    sim.session_started(visit=str(visit_id))
    sim.session_ended("badge_out", 700, 601)
    sim.new_session()
    sim.session_ended("badge_out", 61, 61)  # no start seen: a session nobody claimed
    inbox = Inbox(sessionmaker(engine, expire_on_commit=False))
    rest = [s for s in range(1, 8) if s not in split]
    for seqs in (split, rest, list(range(1, 8))):  # then everything again, as a redelivery
        if seqs:
            inbox.commit(received(sim, seqs))
    db.expire_all()
    assert visit_total(db, visit_id) == Decimal("11.00")
    assert db.scalar(select(func.count()).select_from(ChargeLine)) == 2


def test_ended_sessions_left_unpriced_are_priced_at_start(inbox: Inbox, db: Session, pepper: str) -> None:
    from billing.charges import price_ended

    sim, visit_id = laser_session(db, pepper)
    inbox.commit(received(sim))
    session = db.get(UsageSession, sim.session)
    assert session is not None
    db.query(ChargeLine).delete()
    session.state = "ended"  # as an earlier version left a second session of a batch
    db.commit()
    assert price_ended(db) == 1 and price_ended(db) == 0
    db.commit()
    assert visit_total(db, visit_id) == Decimal("5.50")


def test_an_agent_cannot_end_another_agents_session(inbox: Inbox, db: Session, pepper: str) -> None:
    """Finding 5: pi-printer sends session_ended with pi-laser's open session id, naming its own
    machine: refused and recorded, the victim's session untouched and still priced on its own end."""
    victim = AgentSim("pi-laser", "laser-1")
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    db.commit()
    victim.granted(db, visit.id)
    victim.session_started(visit=str(visit.id))
    inbox.commit(received(victim))
    hostile = AgentSim("pi-printer", "printer-1", session=victim.session)
    hostile.session_ended("badge_out", 360_000 // 10, 36_000)
    assert inbox.commit(received(hostile)).acks == [("pi-printer", Ack(hostile.stream, 1))]
    db.expire_all()
    session = db.get(UsageSession, victim.session)
    assert session is not None and session.state == "open" and session.busy_s == 0
    [bad] = db.scalars(select(RejectedMessage.reason)).all()
    assert f"session {victim.session} was opened by pi-laser on laser-1, not by pi-printer" in bad
    victim.session_ended("badge_out", 700, 601)
    inbox.commit(received(victim, [2]))
    db.expire_all()
    assert visit_total(db, visit.id) == Decimal("5.50")
