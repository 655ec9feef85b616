"""Hostile or broken clients: 10,000 bad payloads per topic, wrong passwords, spoofed topics, PIN guessing."""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select

from billing.models import ChargeLine, InboxEvent, UsageSession
from broker import topics
from broker.messages import (
    AgentStatus,
    AuthRequest,
    SessionStarted,
    UsageEvent,
    encode,
)
from tests.faults.site import Site, wait_until

pytestmark = pytest.mark.faults
PER_TOPIC = int(os.environ.get("FABMETER_FUZZ_PER_TOPIC", "10000"))


class Client:
    """A paho MQTT 5 client with an agent's or billing's credentials; collects what it receives."""

    def __init__(self, site: Site, user: str, password: str | None = None) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:6]}",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        self.client.username_pw_set(user, password if password is not None else site.secret(user))
        self.client.max_inflight_messages_set(100)
        self.received: list[mqtt.MQTTMessage] = []
        self.refused: object = None
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, msg: self.received.append(msg)
        self.client.connect("127.0.0.1", site.broker_port)
        self.client.loop_start()

    def _on_connect(self, _c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            self.refused = reason
        else:
            self.connected.set()

    def publish(self, topic: str, payload: bytes, properties: Properties | None = None) -> None:
        self.client.publish(topic, payload, qos=1, properties=properties).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def bad_payloads(rng: random.Random, valid: bytes, count: int) -> list[bytes]:
    """Payloads that must all be refused: noise, broken JSON, and valid ones with one thing wrong."""
    body = json.loads(valid)
    out: list[bytes] = []
    for i in range(count):
        kind = i % 6
        if kind == 0:
            out.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))))
        elif kind == 1:
            out.append(valid[: rng.randint(1, len(valid) - 1)])  # cut short
        elif kind == 2:
            broken = dict(body)
            del broken[rng.choice(sorted(broken))]  # a field missing
            out.append(json.dumps(broken).encode())
        elif kind == 3:
            out.append(json.dumps(body | {"v": rng.choice([0, 2, "1", None, 1.5])}).encode())  # wrong version
        elif kind == 4:
            key = rng.choice(sorted(k for k in body if k != "v"))
            out.append(json.dumps(body | {key: rng.choice([[1], {"a": 1}, 1e308])}).encode())
        else:
            out.append(rng.choice([b"null", b"[]", b"{}", b'"x"', b"1e999", b"\xff\xfe", b"{" * 500]))
    return out


def _valid_samples() -> dict[str, bytes]:
    event = UsageEvent(stream=str(uuid.uuid4()), seq=1, machine="printer-1", type="session_started",
                       session=str(uuid.uuid4()), boot="b", mono_ns=1, wall_ns=1, wall_synced=False,
                       data=SessionStarted(auth="none", visit=None, credential=None))  # fmt: skip
    status = AgentStatus(online=True, bdseq=5, version="1", machines=("printer-1",))
    auth = AuthRequest(kind="pin", credential="123456", machine="printer-1", session=str(uuid.uuid4()))
    state = json.dumps({"v": 1, "machine": "printer-1", "state": "idle", "wall_ns": 1}).encode()
    return {topics.agent_events("pi-printer"): encode(event), topics.agent_status("pi-printer"): encode(status),
            topics.auth_req("pi-printer"): encode(auth), topics.machine_state("printer-1"): state}  # fmt: skip


def test_generated_payloads_on_every_topic(site: Site) -> None:
    """A broken agent floods every topic billing reads: all recorded as rejected, nothing charged,
    and billing still meters the next print."""
    site.start()
    rng = random.Random(10_000)
    flood = Client(site, "pi-printer")
    assert flood.connected.wait(5)
    samples = _valid_samples()
    for topic, valid in samples.items():
        for payload in bad_payloads(rng, valid, PER_TOPIC):
            flood.client.publish(topic, payload, qos=1)
    flood.publish(topics.agent_events("pi-printer"), b"end of flood")
    flood.close()
    total = PER_TOPIC * len(samples) + 1
    wait_until(lambda: len(site.rejected()) >= total, 240, f"{total} rejected messages", site)
    assert len(site.rejected()) == total
    with site.db() as db:
        assert db.scalar(select(func.count()).select_from(InboxEvent)) == 0
        assert db.scalar(select(func.count()).select_from(UsageSession)) == 0
        assert db.scalar(select(func.count()).select_from(ChargeLine)) == 0
    assert site.billing is not None and site.billing.poll() is None
    site.start_agent("pi-printer")  # billing still works
    site.printer.wait_printing(True)  # type: ignore[union-attr]
    site.check(jobs=site.settle())


def test_an_agent_with_a_wrong_password_is_kept_out(site: Site) -> None:
    site.start()
    site.add_agent("pi-printer", password="not-the-password")
    site.start_agent("pi-printer", wait_connected=False)
    wait_until(lambda: "refused the connection" in site.agent_log("pi-printer"), 15, "the broker to refuse", site)
    wait_until(lambda: site.printer.jobs_done() >= 1, 20, "a print", site)  # type: ignore[union-attr]
    time.sleep(1)
    assert site.inbox_count() == 0 and site.outbox_count("pi-printer") >= 4  # metered, kept, not delivered
    agent = site.agents["pi-printer"]
    assert agent.proc is not None and agent.proc.poll() is None  # still running, still metering


def test_an_agent_cannot_publish_on_another_agents_topics(site: Site) -> None:
    """pi-laser's credentials cannot write pi-printer's events, status or auth requests."""
    site.start()
    spoof = Client(site, "pi-laser")
    assert spoof.connected.wait(5)
    for topic, payload in _valid_samples().items():
        spoof.publish(topic, payload)
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = topics.auth_resp("pi-laser")
    spoof.client.subscribe(topics.auth_resp("pi-laser"), qos=1)
    spoof.client.subscribe(topics.auth_resp("pi-printer"), qos=1)  # not readable either
    time.sleep(1.5)
    spoof.close()
    assert site.inbox_count() == 0 and site.rejected() == [] and site.sessions() == []
    assert spoof.received == []


def test_an_agent_cannot_bill_another_agents_machine(site: Site) -> None:
    """On its own topic, pi-laser sends a session for printer-1 (pi-printer's machine) on a visit."""
    site.start()
    laser = Client(site, "pi-laser")
    assert laser.connected.wait(5)
    stream, session = str(uuid.uuid4()), str(uuid.uuid4())
    started = UsageEvent(stream=stream, seq=1, machine="printer-1", type="session_started", session=session,
                         boot="b", mono_ns=1, wall_ns=1, wall_synced=False,
                         data=SessionStarted(auth="online", visit=str(site.visit_id), credential=None))  # fmt: skip
    laser.publish(topics.agent_events("pi-laser"), encode(started))
    laser.close()
    wait_until(lambda: site.rejected() or site.sessions(), 10, "billing to handle the event", site)
    time.sleep(0.5)
    assert site.sessions("printer-1") == [], "an agent opened a session on another agent's machine"
    assert len(site.rejected()) == 1
