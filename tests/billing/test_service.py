"""The billing service against a real private mosquitto and redis-server; the test plays the agent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.config import ServerConfig
from billing.models import ChargeLine, InboxEvent, Machine, RejectedMessage
from billing.service import BillingService, within_size_limit
from billing.visits import open_visit, visit_total
from broker import topics
from broker.messages import (
    MAX_PAYLOAD_BYTES,
    Ack,
    AllowEntry,
    Allowlist,
    AuthRequest,
    AuthResponse,
    Command,
    decode,
    encode,
)
from broker.services import PrivateMosquitto, PrivateRedis
from tests.billing.agentsim import AgentSim
from tests.billing.conftest import PEPPER
from tests.recorder import Recorder

SESSION = "6f0c2a3e-1111-4000-8000-000000000001"


def write_config(tmp_path: Path, db_url: str, mosquitto: PrivateMosquitto, redis_url: str,
                 billing: str = "") -> Path:  # fmt: skip
    """A server.toml for the services a test started; ``billing`` adds lines to its [billing]."""
    (tmp_path / "pepper").write_text(PEPPER)
    path = tmp_path / "server.toml"
    path.write_text(
        f'database_url = "{db_url}"\nredis_url = "{redis_url}"\npepper_file = "pepper"\n'
        f'[mqtt]\nport = {mosquitto.port}\nclient_id = "billing-{tmp_path.name[-12:]}"\n'
        '[organisation]\nname = "Fablab"\naddress = "Ici"\nsiret = "1"\n'
        f"[billing]\ngap_wait_s = 0.3\ntick_s = 0.1\n{billing}"
    )
    return path


@pytest.fixture
def config_path(tmp_path: Path, db_url: str, db: Session, mosquitto: PrivateMosquitto,
                redis_server: PrivateRedis) -> Path:  # fmt: skip
    return write_config(tmp_path, db_url, mosquitto, redis_server.url)


@pytest.fixture
def service(config_path: Path) -> Iterator[BillingService]:
    running = BillingService(ServerConfig.from_file(config_path, environ={}))
    running.start()
    assert running.events.connected.wait(5) and running.control.connected.wait(5)
    yield running
    running.stop()


@pytest.fixture
def agent(mosquitto: PrivateMosquitto) -> Iterator[Recorder]:
    with Recorder(mosquitto.port, client_id="pi-laser") as rec:
        rec.subscribe("fabmeter/v1/agent/pi-laser/#")
        yield rec


def acked(agent: Recorder, stream: str, upto: int, timeout: float = 10) -> bool:
    def done(msgs: list) -> bool:  # type: ignore[type-arg]
        acks = [decode(Ack, m.payload) for m in msgs if m.topic.endswith("/ack")]
        return any(a.stream == stream and a.upto >= upto for a in acks)

    return agent.wait_for(done, timeout)


def laser_visit(db: Session) -> tuple[AgentSim, int]:
    visit = open_visit(db, pepper=PEPPER, category="walk-in", actor="t").visit
    db.commit()
    sim = AgentSim("pi-laser", "laser-1")
    sim.granted(db, visit.id)
    sim.session_started(visit=str(visit.id))
    sim.checkpoint(60, 30)
    sim.session_ended("badge_out", 700, 601)
    return sim, visit.id


def total(db: Session, visit_id: int) -> Decimal:
    db.expire_all()
    return visit_total(db, visit_id)


def test_same_event_twice_is_charged_once(service: BillingService, agent: Recorder, db: Session) -> None:
    sim, visit_id = laser_visit(db)
    for _ in range(2):
        for _seq, payload in sim.payloads:
            agent.publish(sim.topic, payload)
    assert acked(agent, sim.stream, 3)
    assert total(db, visit_id) == Decimal("5.50")
    assert db.scalar(select(func.count()).select_from(InboxEvent)) == 3


def test_gap_is_healed_by_resend(service: BillingService, agent: Recorder, db: Session) -> None:
    sim, visit_id = laser_visit(db)
    payloads = dict(sim.payloads)
    for seq in (1, 3):  # seq 2 "lost" on the way
        agent.publish(sim.topic, payloads[seq])
    assert acked(agent, sim.stream, 1)
    assert agent.wait_for(lambda msgs: any(m.topic.endswith("/cmd") for m in msgs))
    [command] = [decode(Command, m.payload) for m in agent.on(topics.cmd("pi-laser"))]
    assert command == Command("resend", sim.stream, 2, 2)
    assert total(db, visit_id) == 0  # the end waits for the hole
    for seq in range(command.first, command.last + 1):
        agent.publish(sim.topic, payloads[seq])
    assert acked(agent, sim.stream, 3)
    assert total(db, visit_id) == Decimal("5.50")


def test_events_out_of_order(service: BillingService, agent: Recorder, db: Session) -> None:
    sim, visit_id = laser_visit(db)
    for _seq, payload in reversed(sim.payloads):
        agent.publish(sim.topic, payload)
    assert acked(agent, sim.stream, 3)
    assert total(db, visit_id) == Decimal("5.50")


def test_500_malformed_payloads_are_all_recorded(service: BillingService, agent: Recorder, db: Session) -> None:
    sim, visit_id = laser_visit(db)
    junk = [b"", b"\x00\xff", b"[]", b'{"v": 2}', b'{"v": 1, "seq": -1}', b"{" * 5000]
    for i in range(500):
        agent.client.publish(sim.topic, junk[i % len(junk)] + str(i).encode() * (i % 2), qos=1)
    for _seq, payload in sim.payloads:
        agent.publish(sim.topic, payload)
    assert acked(agent, sim.stream, 3, timeout=20)
    deadline = time.monotonic() + 10
    while db.scalar(select(func.count()).select_from(RejectedMessage)) < 500 and time.monotonic() < deadline:
        time.sleep(0.05)
    reasons = db.scalars(select(RejectedMessage.reason)).all()
    assert len(reasons) == 500
    assert all(r.startswith("UsageEvent") for r in reasons)
    assert total(db, visit_id) == Decimal("5.50")


def ask(agent: Recorder, kind: str, secret: str, machine: str = "laser-1") -> AuthResponse:
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = topics.auth_resp("pi-laser")
    props.CorrelationData = os.urandom(8)
    props.MessageExpiryInterval = 5
    before = len(agent.on(topics.auth_resp("pi-laser")))
    agent.publish(topics.auth_req("pi-laser"), encode(AuthRequest(kind, secret, machine, SESSION)), properties=props)
    assert agent.wait_for(lambda _m: len(agent.on(topics.auth_resp("pi-laser"))) > before)
    reply = agent.on(topics.auth_resp("pi-laser"))[-1]
    assert reply.properties.CorrelationData == props.CorrelationData
    return decode(AuthResponse, reply.payload)


def test_auth_by_pin_over_the_bus_and_allowlist(service: BillingService, agent: Recorder, db: Session) -> None:
    checked = open_visit(db, pepper=PEPPER, category="walk-in", name="Léa", actor="t")
    db.commit()
    assert checked.pin is not None
    answer = ask(agent, "pin", checked.pin)
    assert answer.allow and answer.visit == str(checked.visit.id)
    assert answer.display_name == "Léa" and answer.price_summary == "0,50 €/min"
    assert not ask(agent, "badge", "DEADBEEF").allow

    def listed(msgs: list) -> bool:  # type: ignore[type-arg]
        lists = [decode(Allowlist, m.payload) for m in msgs if m.topic.endswith("/allowlist")]
        return any(e.visit == str(checked.visit.id) for lst in lists for e in lst.entries)

    assert agent.wait_for(listed)
    latest = decode(Allowlist, agent.on(topics.allowlist("pi-laser"))[-1].payload)
    assert latest.rates_cents_per_hour["laser-1"] == 4800  # the company's 0,80 €/min


def test_live_state_in_redis_and_a_late_will_is_ignored(
    service: BillingService, agent: Recorder, redis_server: PrivateRedis
) -> None:
    from broker.messages import AgentStatus, MachineState

    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    status = topics.agent_status("pi-laser")
    agent.publish(status, encode(AgentStatus(True, 7, "1.0", ("laser-1",))), retain=True)
    agent.publish(topics.machine_state("laser-1"), encode(MachineState(
        machine="laser-1", state="busy", wall_ns=time.time_ns(), job="box.svg", session=SESSION,
        user="Léa", temperatures={"tube": 21.5})), retain=True)  # fmt: skip
    deadline = time.monotonic() + 5
    while r.hget("fabmeter:machine:laser-1", "state") != "busy" and time.monotonic() < deadline:
        time.sleep(0.05)
    machine = r.hgetall("fabmeter:machine:laser-1")
    assert machine["online"] == "1" and machine["agent"] == "pi-laser" and machine["user"] == "Léa"
    assert json.loads(machine["temperatures"]) == {"tube": 21.5}
    assert "laser-1" in r.smembers("fabmeter:machines")
    agent.publish(status, encode(AgentStatus(False, 6, "1.0", ("laser-1",))), retain=True)  # late Will
    agent.publish(status, encode(AgentStatus(False, 7, "1.0", ("laser-1",))), retain=True)  # real one
    deadline = time.monotonic() + 5
    while r.hget("fabmeter:machine:laser-1", "online") != "0" and time.monotonic() < deadline:
        time.sleep(0.05)
    changes = r.xrange("fabmeter:changes")
    onlines = [json.loads(fields["state"])["online"] for _id, fields in changes]
    assert onlines[-1] == "0" and r.hget("fabmeter:machine:laser-1", "offline_since") != ""
    assert onlines.count("0") == 1  # the stale Will (bdseq 6) changed nothing


def test_states_and_statuses_reach_only_the_senders_own_machines(
    service: BillingService, agent: Recorder, db: Session, redis_server: PrivateRedis
) -> None:
    """Finding 5: a state naming another machine than its topic, and a status claiming a machine the
    ledger gives another agent, are recorded as rejected; the other machine's card is untouched."""
    from broker.messages import AgentStatus, MachineState

    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    owner = db.scalar(select(Machine.agent).where(Machine.id == "printer-1"))
    assert owner not in (None, "pi-laser")
    forged = MachineState(machine="printer-1", state="error", wall_ns=1, job="forged")
    agent.publish(topics.machine_state("laser-1"), encode(forged))
    agent.publish(topics.agent_status("pi-laser"), encode(AgentStatus(True, 1, "1", ("laser-1", "printer-1"))))
    deadline = time.monotonic() + 5
    while len(db.scalars(select(RejectedMessage)).all()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        db.expire_all()
    reasons = sorted(db.scalars(select(RejectedMessage.reason)))
    assert reasons == ["machine printer-1 is not one of pi-laser's machines",
                       "the topic names machine laser-1, the payload printer-1"]  # fmt: skip
    assert r.hget("fabmeter:machine:printer-1", "job") in (None, "")


KILL_AFTER_COMMIT = """
import os, signal, sys
from billing.service import BillingService, within_size_limit
def die(self, batch, result):
    os.kill(os.getpid(), signal.SIGKILL)  # committed, not yet acked
BillingService._after_commit = die
from billing.cli import billing
billing(["--config", sys.argv[1]])
"""


def test_billing_killed_between_commit_and_ack(config_path: Path, agent: Recorder, db: Session) -> None:
    config = ServerConfig.from_file(config_path, environ={})
    first = BillingService(config)  # creates billing's persistent session, then goes away
    first.start()
    assert first.events.connected.wait(5)
    time.sleep(0.3)
    first.stop()
    sim, visit_id = laser_visit(db)
    for _seq, payload in sim.payloads:  # queued by the broker for the absent billing
        agent.publish(sim.topic, payload)
    root = Path(__file__).parents[2]
    proc = subprocess.Popen([sys.executable, "-c", KILL_AFTER_COMMIT, str(config_path)], cwd=root)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    db.expire_all()
    committed = db.scalar(select(func.count()).select_from(InboxEvent))
    assert committed is not None and committed >= 1  # committed...
    assert not agent.on(topics.agent_ack("pi-laser"))  # ...but never acked
    again = BillingService(config)
    again.start()
    try:
        assert acked(agent, sim.stream, 3)
    finally:
        again.stop()
    assert total(db, visit_id) == Decimal("5.50")
    assert db.scalar(select(func.count()).select_from(ChargeLine)) == 1


def test_an_allowlist_too_big_for_the_broker_keeps_its_newest_entries() -> None:
    entries = tuple(AllowEntry(credential=f"{i:0128x}", kind="pin", visit=str(i), expires=1) for i in range(600))
    big = Allowlist(issued=1, salt="s", credit_cap_cents=1, entries=entries)
    assert len(encode(big)) > MAX_PAYLOAD_BYTES
    cut = within_size_limit(big)
    assert len(encode(cut)) <= MAX_PAYLOAD_BYTES
    assert cut.entries[-1].visit == "599" and 280 < len(cut.entries) < 600


def test_a_loop_that_dies_is_restarted_counted_and_reported(service: BillingService, agent: Recorder,
                                                             db: Session, redis_server: PrivateRedis) -> None:  # fmt: skip
    """A fault planted in the control thread's housekeeping: the loop restarts, billing still answers."""
    from billing.health import HEALTH

    real, calls = service._housekeeping, []

    def planted() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("planted fault")
        real()

    service._housekeeping = planted  # type: ignore[method-assign]
    deadline = time.monotonic() + 10
    while service.parts.restarts("control") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.parts.restarts("control") == 1
    visit = open_visit(db, pepper=PEPPER, category="walk-in", actor="t")
    db.commit()
    assert ask(agent, "pin", visit.pin or "").allow  # the restarted control thread answers
    assert service.beat()
    report = json.loads(redis.Redis.from_url(redis_server.url).get(HEALTH) or b"{}")
    assert report["problems"] == [] and report["parts"]["control"]["restarts"] == 1


def _until(check: object, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


def test_the_board_shows_the_laser_minimum_at_once_and_freezes_it_when_the_laser_is_unreachable(
    service: BillingService, agent: Recorder, db: Session, redis_server: PrivateRedis
) -> None:
    from broker.messages import AgentStatus, MachineState

    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    visit = open_visit(db, pepper=PEPPER, category="walk-in", name="Léa Martin", actor="t").visit
    db.commit()
    sim = AgentSim("pi-laser", "laser-1")
    sim.granted(db, visit.id)
    agent.publish(topics.agent_status("pi-laser"), encode(AgentStatus(True, 1, "1.0", ("laser-1",))), retain=True)
    agent.publish(sim.topic, sim.session_started(visit=str(visit.id)))
    assert acked(agent, sim.stream, 1)

    def state(name: str, elapsed_s: int) -> None:
        agent.publish(topics.machine_state("laser-1"), encode(MachineState(
            machine="laser-1", state=name, wall_ns=time.time_ns(), session=sim.session, user="Léa",
            elapsed_s=elapsed_s)), retain=True)  # fmt: skip

    state("busy", 20)  # fired 20 s in, before any checkpoint: the 5-minute minimum is due
    _until(lambda: r.hget("fabmeter:machine:laser-1", "cost_cents") == "250")
    assert r.hget("fabmeter:machine:laser-1", "cost_cents") == "250"  # seed: 0,50 €/min, 5 min at least
    state("offline", 400)  # the laser's controller stops answering
    agent.publish(sim.topic, sim.checkpoint(400, 400))  # the agent still counts the time
    assert acked(agent, sim.stream, 2)
    time.sleep(0.5)  # several ticks of billing's housekeeping
    fields = r.hgetall("fabmeter:machine:laser-1")
    assert fields["cost_cents"] == "250" and fields["unreachable_since"] != ""
    state("busy", 420)
    _until(lambda: r.hget("fabmeter:machine:laser-1", "cost_cents") == "350")
    assert r.hget("fabmeter:machine:laser-1", "cost_cents") == "350"  # 7 started minutes once it answers
