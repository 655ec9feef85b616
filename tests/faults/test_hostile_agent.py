"""An attacker holding one agent's valid broker credentials (pi-laser), through a real Mosquitto and
billing, while pi-printer prints for real: whatever pi-laser sends, the printer's jobs are still
committed and priced, and nothing is charged that billing did not decide."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from billing.health import HEALTH
from broker import topics
from broker.messages import MAX_PAYLOAD_BYTES, SessionStarted, UsageEvent, to_dict
from tests.faults.site import Site, wait_until
from tests.faults.test_hostile import Client

pytestmark = pytest.mark.faults


def _event(stream: str, seq: int, kind: str, session: str, data: dict[str, object]) -> bytes:
    body = to_dict(UsageEvent(stream=stream, seq=seq, machine="laser-1", type="session_started", session=session,
                              boot="b", mono_ns=1, wall_ns=1, wall_synced=False,
                              data=SessionStarted(auth="none")))  # fmt: skip
    body.update(type=kind, data=data)
    return json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels as "\ud800"


def _health(site: Site) -> dict[str, object]:
    raw = redis.Redis.from_url(site.redis.url).get(HEALTH)
    return json.loads(raw or b"{}")  # type: ignore[no-any-return]


def test_poison_messages_stop_nothing(site: Site) -> None:
    """Finding 1 and 6: a lone surrogate, 2^63-1 seconds, 1e308 mm, a surrogate in a credential and in a
    state's job name, remaining_s = 2^62, and a 100 kB event: each is refused (the oversized one by
    the broker) and recorded; billing's threads never stop, and the printer is priced meanwhile."""
    site.start()
    site.start_agent("pi-printer")
    site.printer.wait_printing(True)  # type: ignore[union-attr]
    hostile = Client(site, "pi-laser")
    assert hostile.connected.wait(5)
    stream, session = str(uuid.uuid4()), str(uuid.uuid4())
    poison = [
        _event(stream, 1, "job_started", session, {"job": "\ud800.gcode"}),
        _event(stream, 2, "session_ended", session,
               {"reason": "badge_out", "session_s": 2**63 - 1, "busy_s": 0, "job_s": 0}),
        _event(stream, 3, "job_ended", session,
               {"job": "x", "outcome": "completed", "job_s": 1, "filament_mm": 1e308}),
    ]  # fmt: skip
    for payload in poison:
        hostile.publish(topics.agent_events("pi-laser"), payload)
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = topics.auth_resp("pi-laser")
    request = {"v": 1, "kind": "pin", "credential": "12\ud80034", "machine": "laser-1", "session": session}
    hostile.publish(topics.auth_req("pi-laser"), json.dumps(request).encode(), properties=props)
    state = {"v": 1, "machine": "laser-1", "state": "printing", "wall_ns": 1, "job": "\udfff", "remaining_s": 2**62}
    hostile.publish(topics.machine_state("laser-1"), json.dumps(state).encode())
    hostile.client.publish(topics.agent_events("pi-laser"), b"{" + b" " * (MAX_PAYLOAD_BYTES + 100_000), qos=1)
    wait_until(lambda: len(site.rejected()) >= 5, 15, "five rejected messages", site)
    time.sleep(1)
    hostile.close()
    reasons = sorted(r.reason for r in site.rejected())
    assert len(reasons) == 5, reasons  # the 100 kB event never reached billing
    assert sum("lone surrogate" in r for r in reasons) == 3 and sum("between 0 and" in r for r in reasons) == 2
    assert all(len(r.payload) <= 4096 for r in site.rejected())
    site.check(jobs=site.settle())  # every print committed, priced once, billed to the second
    assert site.billing is not None and site.billing.poll() is None
    health = _health(site)
    assert health["problems"] == [] and all(p["restarts"] == 0 for p in health["parts"].values())  # type: ignore[attr-defined]
