"""The outbox and the MQTT link against a real private mosquitto: nothing lost, duplicates only re-sends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from agent.config import AgentConfig, MqttConfig
from agent.link import Link
from agent.outbox import Outbox
from agent.sessions import Pending
from agent.snapshot import Now
from broker import messages, topics
from broker.messages import AgentStatus, Allowlist, AuthRequest, AuthResponse, SessionTotals
from broker.services import PrivateMosquitto
from tests.agent.fake_billing import FakeBilling

SESSION = "22222222-2222-4222-8222-222222222222"
ROOT = Path(__file__).resolve().parents[2]


def config(tmp_path: Path, port: int) -> AgentConfig:
    return AgentConfig("pi-test", MqttConfig(port=port), tmp_path / "outbox.db", resend_after_s=1.0)


def checkpoints(n: int, start: int = 0) -> list[Pending]:
    now = Now(time.monotonic_ns(), time.time_ns(), True, "boot-a")
    return [Pending("laser-1", "session_checkpoint", SESSION, SessionTotals(i, i, 0), now) for i in range(start, start + n)]


@pytest.fixture
def start_link(tmp_path: Path, mosquitto: PrivateMosquitto) -> Iterator[Callable[[], Link]]:
    """Starts the agent's link to the test broker; every link is stopped after the test."""
    links: list[Link] = []

    def start() -> Link:
        link = Link(config(tmp_path, mosquitto.port), machines=("laser-1",), version="test")
        links.append(link)
        link.start()
        return link

    yield start
    for link in links:
        link.stop(timeout=1)


def test_outbox_seq_is_never_reused_and_stream_is_per_file(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "a.db")
    assert outbox.record(checkpoints(3)) == [1, 2, 3]
    assert outbox.acknowledge(3) == 3 and outbox.count() == 0
    assert Outbox(tmp_path / "a.db").record(checkpoints(1)) == [4]
    assert Outbox(tmp_path / "a.db").stream == outbox.stream != Outbox(tmp_path / "b.db").stream
    seq, payload = outbox.pending(0, 10)[0]
    event = messages.decode(messages.UsageEvent, payload)
    assert (seq, event.seq, event.stream, event.data) == (4, 4, outbox.stream, SessionTotals(0, 0, 0))


def test_events_reach_billing_and_leave_the_outbox_only_when_acked(
    tmp_path: Path, mosquitto: PrivateMosquitto, start_link: Callable[[], Link]
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.record(checkpoints(300))
    billing = FakeBilling(mosquitto.port, "pi-test", ack=False).start()
    link = start_link()
    billing.wait_for(lambda: billing.contiguous() == 300)
    time.sleep(0.3)
    assert outbox.count() == 300  # PUBACK is not enough
    billing.ack = True
    billing.wait_for(lambda: outbox.count() == 0)
    assert outbox.record(checkpoints(1)) == [301]
    link.wake()
    billing.wait_for(lambda: billing.contiguous() == 301)
    billing.stop()


def test_an_event_after_a_quiet_spell_is_published_once(
    tmp_path: Path, mosquitto: PrivateMosquitto, start_link: Callable[[], Link]
) -> None:
    """The stall timer starts when an event is sent, not at the last ack long before it."""
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.record(checkpoints(1))
    billing = FakeBilling(mosquitto.port, "pi-test").start()
    link = start_link()
    billing.wait_for(lambda: outbox.count() == 0)
    time.sleep(1.5)  # longer than resend_after_s with nothing to send
    outbox.record(checkpoints(1, start=1))
    link.wake()
    billing.wait_for(lambda: outbox.count() == 0)
    time.sleep(0.5)
    assert dict(billing.deliveries) == {1: 1, 2: 1}
    billing.stop()


def test_broker_killed_mid_stream_loses_nothing(
    tmp_path: Path, mosquitto: PrivateMosquitto, start_link: Callable[[], Link]
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.record(checkpoints(5000))
    billing = FakeBilling(mosquitto.port, "pi-test").start()
    start_link()
    billing.wait_for(lambda: len(billing.events) > 300)
    mosquitto.kill()
    assert len(billing.events) < 5000, "the broker should die mid-stream"
    outbox.record(checkpoints(100, 5000))  # metering goes on while the broker is away
    time.sleep(0.5)
    mosquitto.start()
    billing.wait_for(lambda: billing.contiguous() == 5100, timeout=60)
    billing.wait_for(lambda: outbox.count() == 0)
    assert sorted(billing.events) == list(range(1, 5101))
    billing.stop()


def test_agent_killed_between_insert_and_ack_loses_nothing(tmp_path: Path, mosquitto: PrivateMosquitto) -> None:
    billing = FakeBilling(mosquitto.port, "pi-test").start()
    path = tmp_path / "outbox.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, str(ROOT / "tests/agent/link_child.py"), str(path), str(mosquitto.port), "2000"],
                             env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    billing.wait_for(lambda: len(billing.events) > 200)
    child.send_signal(signal.SIGKILL)
    child.wait()
    recorded = Outbox(path).last_seq()
    assert 200 < recorded < 2000
    again = subprocess.run([sys.executable, str(ROOT / "tests/agent/link_child.py"), str(path), str(mosquitto.port), "10"],
                           env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "drained" in again.stdout, again.stderr
    assert sorted(billing.events) == list(range(1, recorded + 11))
    assert Outbox(path).count() == 0
    billing.stop()


def test_status_is_retained_with_a_last_will(tmp_path: Path, mosquitto: PrivateMosquitto, start_link: Callable[[], Link]) -> None:
    link = start_link()
    FakeBilling.wait_for(lambda: link.connected)
    first = read_retained(mosquitto.port, topics.agent_status("pi-test"), AgentStatus)
    assert first.online and first.machines == ("laser-1",)
    seen: list[AgentStatus] = []
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = lambda c, u, m: seen.append(messages.decode(AgentStatus, m.payload))
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.subscribe(topics.agent_status("pi-test"), qos=1)
    watcher.loop_start()
    FakeBilling.wait_for(lambda: seen)
    link._client._sock.close()  # type: ignore[union-attr]  # the connection dies without DISCONNECT
    FakeBilling.wait_for(lambda: any(not s.online and s.bdseq == first.bdseq for s in seen))
    FakeBilling.wait_for(lambda: seen[-1].online and seen[-1].bdseq > first.bdseq)
    watcher.loop_stop()
    watcher.disconnect()


def read_retained(port: int, topic: str, cls: type) -> AgentStatus:
    got: list[bytes] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.append(m.payload)
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        client.loop(0.05)
    client.disconnect()
    assert got, f"nothing retained on {topic}"
    result: AgentStatus = messages.decode(cls, got[-1])
    return result


def test_auth_request_gets_billing_answer_or_none(tmp_path: Path, mosquitto: PrivateMosquitto, start_link: Callable[[], Link]) -> None:
    billing = FakeBilling(mosquitto.port, "pi-test").start()
    link = start_link()
    FakeBilling.wait_for(lambda: link.connected)
    request = AuthRequest(kind="pin", credential="123456", machine="laser-1", session=SESSION)
    assert link.request_auth(request, timeout=0.5) is None
    billing.auth_answer = AuthResponse(allow=True, reason="ok", session=SESSION, visit="v-7", display_name="Alice")
    answer = link.request_auth(request, timeout=3)
    assert answer is not None and (answer.allow, answer.visit, answer.session) == (True, "v-7", SESSION)
    billing.bridged = True
    answer = link.request_auth(request, timeout=3)
    assert answer is not None and answer.visit == "v-7", "a bridged answer is matched by session id"
    billing.stop()


def test_retained_allowlist_is_kept_for_offline_boots(tmp_path: Path, mosquitto: PrivateMosquitto, start_link: Callable[[], Link]) -> None:
    allowlist = Allowlist(issued=1, salt="0123456789abcdef", credit_cap_cents=2000, rates_cents_per_hour={"laser-1": 1200})
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    publisher.publish(topics.allowlist("pi-test"), messages.encode(allowlist), qos=1, retain=True).wait_for_publish(5)
    publisher.disconnect()
    publisher.loop_stop()
    link = start_link()
    FakeBilling.wait_for(lambda: link.allowlist == allowlist)
    FakeBilling.wait_for(lambda: Outbox(tmp_path / "outbox.db").get("allowlist") is not None)
    mosquitto.kill()
    offline = Link(config(tmp_path, mosquitto.port), machines=("laser-1",), version="test")
    assert offline.allowlist == allowlist
