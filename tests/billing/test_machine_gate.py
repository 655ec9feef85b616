"""The real billing service and a real agent (in this process, pins from gpiozero's MockFactory)
through a private mosquitto and redis-server: refusals online and offline, an out-of-service order
arriving during a print, upkeep counters across an agent restart.

The agent's edges are fakes only at the hardware: ``MockFactory`` pins for the interlock relay and
the current sensor (gpiozero's documented test factory), and a scripted driver that reports what
OctoPrint's ``/api/job`` would (state, job name, progress), as ``agent.machines.octoprint`` maps it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from gpiozero.pins.mock import MockFactory
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.auth import Credential as Presented
from agent.config import AgentConfig, MachineConfig, MqttConfig
from agent.machines.gpio import CurrentSense
from agent.main import Agent
from agent.snapshot import JobView, MachineSnapshot
from billing.config import ServerConfig
from billing.downtime import put_back, take_out
from billing.live import machine_key
from billing.models import UsageSession
from billing.qualifications import define, grant
from billing.service import BillingService
from billing.upkeep import counters
from billing.visits import open_visit
from broker.services import PrivateMosquitto, PrivateRedis
from tests.billing.conftest import PEPPER
from tests.billing.test_service import write_config

TRAINED = "formation requise : découpe laser"


@pytest.fixture
def server_config(tmp_path: Path, db_url: str, db: Session, mosquitto: PrivateMosquitto,
                  redis_server: PrivateRedis) -> ServerConfig:  # fmt: skip
    cheap = "allowlist_time_cost = 1\nallowlist_memory_kib = 64\n"  # Argon2id fast enough for a test
    return ServerConfig.from_file(write_config(tmp_path, db_url, mosquitto, redis_server.url, cheap), environ={})


def start_billing(config: ServerConfig) -> BillingService:
    service = BillingService(config)
    service.start()
    assert service.events.connected.wait(5) and service.control.connected.wait(5)
    return service


@pytest.fixture
def billing(server_config: ServerConfig) -> Iterator[BillingService]:
    service = start_billing(server_config)
    yield service
    service.stop()


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.reset()


class ScriptedPrinter:
    """What OctoPrint's job endpoint reports, set by the test."""

    def __init__(self, machine: str) -> None:
        self.machine, self.snapshot = machine, MachineSnapshot(machine, "idle")

    def show(self, state: str, progress: float | None = None, outcome: str | None = None) -> None:
        job = JobView("boat.gcode", "boat.gcode@1", progress=progress, outcome=outcome) if state != "idle" or outcome else None
        self.snapshot = MachineSnapshot(self.machine, state, job=job)

    def poll(self) -> MachineSnapshot:
        return self.snapshot

    def close(self) -> None:
        pass


def laser_agent(tmp_path: Path, port: int, pins: MockFactory) -> Agent:
    laser = MachineConfig(id="laser-1", driver="gpio", pin="GPIO27", on_s=0, off_s=0, interlock_pin="GPIO17")
    config = AgentConfig("pi-laser", MqttConfig(port=port), tmp_path / "laser-outbox.db", machines=(laser,),
                         auth_timeout_s=1.0, checkpoint_s=0.2, state_every_s=1)  # fmt: skip
    drivers = {"laser-1": CurrentSense("laser-1", pin="GPIO27", on_s=0, off_s=0, pin_factory=pins)}
    return Agent(config, drivers=drivers, pin_factory=pins, start_readers=False)  # type: ignore[dict-item]


def ticking(agent: Agent, done: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Run the agent's loop until ``done()``; False if it never came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        agent.tick()
        if done():
            return True
        time.sleep(0.05)
    return False


def present(agent: Agent, kind: str, secret: str, machine: str = "laser-1") -> None:
    agent.credentials.put(Presented(kind, secret, machine))
    agent.tick()


def shown(server_config: ServerConfig, machine: str, field: str) -> object:
    client = redis.Redis.from_url(server_config.redis_url, decode_responses=True)
    value = client.hget(machine_key(machine), field)
    return json.loads(value) if value else None


def refusal_shown(server_config: ServerConfig, machine: str, message: str) -> Callable[[], bool]:
    def check() -> bool:
        found = shown(server_config, machine, "last_refusal")
        return isinstance(found, dict) and found.get("message") == message

    return check


def test_untrained_people_are_refused_online_and_offline_and_the_board_shows_it(
    tmp_path: Path, db: Session, billing: BillingService, server_config: ServerConfig, mosquitto: PrivateMosquitto,
    pins: MockFactory,
) -> None:  # fmt: skip
    define(db, "laser", "découpe laser", machines=["laser-1"], actor="admin")
    untrained = open_visit(db, pepper=PEPPER, category="walk-in", actor="t").pin
    supervised = open_visit(db, pepper=PEPPER, category="walk-in", actor="t")
    grant(db, "laser", visit_id=supervised.visit.id, actor="alice")
    db.commit()
    assert untrained and supervised.pin
    agent = laser_agent(tmp_path, mosquitto.port, pins)
    relay = pins.pin(17)
    agent.link.start()
    try:
        assert ticking(agent, lambda: agent.link.connected and bool(agent.link.allowlist and
                                                                   len(agent.link.allowlist.entries) == 2))  # fmt: skip
        present(agent, "pin", untrained)  # online: billing answers
        assert relay.state is False
        assert ticking(agent, refusal_shown(server_config, "laser-1", TRAINED))
        assert shown(server_config, "laser-1", "last_refusal")["reason"] == "not_qualified"  # type: ignore[index]
        present(agent, "pin", supervised.pin)
        assert relay.state is True and agent.tracks["laser-1"].session.auth == "online"  # type: ignore[union-attr]
        present(agent, "pin", supervised.pin)  # badge out
        assert relay.state is False

        billing.stop()  # billing away: the agent decides alone from its list, the same way
        present(agent, "pin", untrained)
        assert relay.state is False
        offline = [e for e in agent.outbox.pending(0, 100) if b'"offline_auth"' in e[1]]
        assert offline and TRAINED.encode() in offline[-1][1]
        present(agent, "pin", supervised.pin)
        assert relay.state is True and agent.tracks["laser-1"].session.auth == "offline"  # type: ignore[union-attr]
    finally:
        agent.link.stop()
        agent.close()


def test_an_out_of_service_order_during_a_print_applies_only_after_it(
    tmp_path: Path, db: Session, billing: BillingService, server_config: ServerConfig, mosquitto: PrivateMosquitto,
    pins: MockFactory,
) -> None:  # fmt: skip
    pin = open_visit(db, pepper=PEPPER, category="walk-in", actor="t").pin
    db.commit()
    assert pin
    printer = MachineConfig(id="printer-1", driver="octoprint", url="http://printer.invalid", api_key="k",
                            interlock_pin="GPIO22")  # fmt: skip
    config = AgentConfig("pi-printer", MqttConfig(port=mosquitto.port), tmp_path / "printer-outbox.db",
                         machines=(printer,), auth_timeout_s=1.0, checkpoint_s=0.2)  # fmt: skip
    scripted = ScriptedPrinter("printer-1")
    agent = Agent(config, drivers={"printer-1": scripted}, pin_factory=pins, start_readers=False)  # type: ignore[dict-item]
    relay = pins.pin(22)
    agent.link.start()
    try:
        assert ticking(agent, lambda: agent.link.connected and agent.link.service_order("printer-1") is not None)
        present(agent, "pin", pin, "printer-1")
        scripted.show("printing", progress=10.0)
        agent.tick()
        assert relay.state is True
        take_out(db, "printer-1", "buse bouchée", actor="alice")
        db.commit()
        assert ticking(agent, lambda: agent.out_of_service("printer-1"))
        for _ in range(5):  # the order is in, the print goes on: nothing cut, nothing ended
            agent.tick()
        assert relay.state is True and agent.tracks["printer-1"].session is not None
        scripted.show("printing", progress=80.0)
        agent.tick()
        assert relay.state is True
        scripted.show("idle", outcome="completed")
        assert ticking(agent, lambda: agent.tracks["printer-1"].session is None)
        assert relay.state is False
        present(agent, "pin", pin, "printer-1")  # refused at the machine, even before asking billing
        assert relay.state is False and agent.tracks["printer-1"].session is None
        assert ticking(agent, refusal_shown(server_config, "printer-1", "hors service : buse bouchée"))
        assert shown(server_config, "printer-1", "out_of_service")["reason"] == "buse bouchée"  # type: ignore[index]
        put_back(db, "printer-1", actor="bob")
        db.commit()
        assert ticking(agent, lambda: not agent.out_of_service("printer-1"))
        assert ticking(agent, lambda: shown(server_config, "printer-1", "out_of_service") is None)
        present(agent, "pin", pin, "printer-1")
        assert relay.state is True
    finally:
        agent.link.stop()
        agent.close()
    ended = db.scalars(select(UsageSession).where(UsageSession.machine_id == "printer-1")).all()
    assert [s.end_reason for s in ended if s.end_reason] == ["job_end"]  # the print ran to its end


def test_a_relay_machine_taken_out_of_service_ends_its_session_at_the_next_idle(
    tmp_path: Path, db: Session, billing: BillingService, mosquitto: PrivateMosquitto, pins: MockFactory,
) -> None:  # fmt: skip
    pin = open_visit(db, pepper=PEPPER, category="walk-in", actor="t").pin
    db.commit()
    assert pin
    agent = laser_agent(tmp_path, mosquitto.port, pins)
    agent.link.start()
    try:
        assert ticking(agent, lambda: agent.link.service_order("laser-1") is not None)
        present(agent, "pin", pin)
        pins.pin(27).drive_high()  # cutting
        agent.tick()
        take_out(db, "laser-1", "miroir sale", actor="alice")
        db.commit()
        assert ticking(agent, lambda: agent.out_of_service("laser-1"))
        agent.tick()
        assert pins.pin(17).state is True and agent.tracks["laser-1"].session is not None
        pins.pin(27).drive_low()  # the cut is over
        assert ticking(agent, lambda: agent.tracks["laser-1"].session is None)
        assert pins.pin(17).state is False
        assert ticking(agent, lambda: agent.outbox.count() == 0)  # billing has it
    finally:
        agent.link.stop()
        agent.close()
    db.expire_all()
    session = db.scalars(select(UsageSession).where(UsageSession.machine_id == "laser-1")).one()
    assert session.end_reason == "out_of_service"


def test_upkeep_counters_count_each_session_once_across_an_agent_restart(
    tmp_path: Path, db: Session, billing: BillingService, mosquitto: PrivateMosquitto, pins: MockFactory,
) -> None:  # fmt: skip
    pin = open_visit(db, pepper=PEPPER, category="walk-in", actor="t").pin
    db.commit()
    assert pin
    agent = laser_agent(tmp_path, mosquitto.port, pins)
    agent.link.start()
    assert ticking(agent, lambda: agent.link.connected)
    present(agent, "pin", pin)
    pins.pin(27).drive_high()
    assert ticking(agent, lambda: agent.tracks["laser-1"].session.busy_ns > 1.2e9)  # type: ignore[union-attr]
    assert ticking(agent, lambda: agent.outbox.count() == 0)  # its checkpoints are in the ledger
    agent.link.stop()  # the power goes
    agent.close()
    again = laser_agent(tmp_path, mosquitto.port, pins)  # a new boot: the session closes at its checkpoint
    again.boot = "another-boot"
    again.link.start()
    try:
        assert ticking(again, lambda: again.tracks["laser-1"].session is None and again.outbox.count() == 0)
        present(again, "pin", pin)
        pins.pin(27).drive_high()  # the new sensor device starts from a low pin
        assert ticking(again, lambda: again.tracks["laser-1"].session.busy_ns > 0.5e9)  # type: ignore[union-attr]
        pins.pin(27).drive_low()
        present(again, "pin", pin)  # badge out
        assert ticking(again, lambda: again.outbox.count() == 0)
    finally:
        again.link.stop()
        again.close()
    db.expire_all()
    sessions = db.scalars(select(UsageSession).where(UsageSession.machine_id == "laser-1")).all()
    assert sorted(s.end_reason or "" for s in sessions) == ["badge_out", "power_loss_recovered"]
    assert counters(db, "laser-1").busy_s == sum(s.busy_s for s in sessions) >= 1
