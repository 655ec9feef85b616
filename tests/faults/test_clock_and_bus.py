"""The agent's wall clock stepped, every message twice, a late Last Will, Redis restarted."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import redis
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from broker import topics
from broker.messages import AgentStatus, encode
from tests.faults.site import Site, wait_until

pytestmark = pytest.mark.faults
WALLCLOCK = Path(__file__).with_name("wallclock.py")
DAYS_3 = 3 * 86400


def _with_clock(site: Site, offset: float, synced: bool) -> Path:
    clock = site.tmp / "clock"
    clock.write_text(f"{offset} {int(synced)}\n")
    agent = site.add_agent("pi-printer")
    agent.command = [sys.executable, str(WALLCLOCK), str(clock)]
    return clock


@pytest.mark.parametrize(
    ("before", "after"),
    [((-DAYS_3, False), (0, True)), ((0, True), (-3600, True))],
    ids=["3-days-behind-then-stepped-forward", "stepped-backwards"],
)
def test_wall_clock_stepped_mid_session(site: Site, before: tuple[float, bool], after: tuple[float, bool]) -> None:
    """Durations come from the monotonic clock: a step of the wall clock changes no bill, and the
    session's start and end as billing records them stay in order and about one print apart."""
    site.job_s, site.idle_s = 12.0, 2.0
    site.start()
    clock = _with_clock(site, *before)
    site.start_agent("pi-printer")
    site.printer.wait_printing(True)  # type: ignore[union-attr]
    time.sleep(5)
    clock.write_text(f"{after[0]} {int(after[1])}\n")
    site.check(jobs=site.settle())
    for session in site.sessions("printer-1"):
        assert session.ended_at is not None
        span = (session.ended_at - session.started_at).total_seconds()
        assert -1 <= span <= site.job_s + 5, f"session recorded from {session.started_at} to {session.ended_at}"


def test_every_message_delivered_twice(site: Site) -> None:
    """A re-publisher with billing's credentials sends every event again: nothing is charged twice."""
    site.start()
    copies = []
    twin = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="duplicator", protocol=mqtt.MQTTv5)
    twin.username_pw_set("billing", site.secret("billing"))

    def again(client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        copies.append(msg.topic)
        client.publish(msg.topic, msg.payload, qos=1)

    twin.on_message = again
    twin.connect("127.0.0.1", site.broker_port)
    twin.subscribe(topics.pattern("events"), options=SubscribeOptions(qos=1, noLocal=True))
    twin.loop_start()
    try:
        site.start_agent("pi-printer")
        site.start_agent("pi-laser")
        site.laser_session(3)
        wait_until(lambda: site.printer.jobs_done() >= 2, 20, "two prints", site)  # type: ignore[union-attr]
        site.check(jobs=site.settle(), min_jobs=2)
        assert len(copies) >= 4 * site.printer.jobs_done()  # type: ignore[union-attr]
    finally:
        twin.disconnect()
        twin.loop_stop()


def test_a_last_will_arriving_after_the_new_online(site: Site) -> None:
    site.start()
    agent = site.start_agent("pi-printer")
    agent.proxy.reset_all()  # the agent reconnects: a new bdseq, and the broker sends the old Will
    live = redis.Redis.from_url(site.redis.url, decode_responses=True)
    wait_until(lambda: live.hget("fabmeter:agent:pi-printer", "bdseq") == "1", 15, "the second connection", site)
    wait_until(lambda: live.hget("fabmeter:machine:printer-1", "online") == "1", 10, "printer-1 online", site)
    bdseq = 1
    stale = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="stale-will", protocol=mqtt.MQTTv5)
    stale.username_pw_set("pi-printer", site.secret("pi-printer"))
    stale.connect("127.0.0.1", site.broker_port)
    stale.loop_start()
    will = AgentStatus(online=False, bdseq=bdseq - 1, version="0", machines=("printer-1",))
    stale.publish(topics.agent_status("pi-printer"), encode(will), qos=1, retain=False).wait_for_publish(5)
    stale.disconnect()
    stale.loop_stop()
    wait_until(lambda: "ignored stale status" in site.billing_log.read_text(), 10, "billing to see the will", site)
    assert live.hget("fabmeter:machine:printer-1", "online") == "1"
    assert live.hget("fabmeter:agent:pi-printer", "bdseq") == str(bdseq)
    site.printer.wait_printing(True)  # type: ignore[union-attr]
    site.check(jobs=site.settle())


def test_redis_restarted_under_billing(site: Site) -> None:
    """Billing keeps metering while Redis is gone; the live state comes back, online included."""
    site.start()
    site.start_agent("pi-printer")
    site.printer.wait_printing(True)  # type: ignore[union-attr]
    site.redis.kill()
    time.sleep(3)
    site.redis.start()
    live = redis.Redis.from_url(site.redis.url, decode_responses=True)
    wait_until(lambda: live.hget("fabmeter:machine:printer-1", "state"), 15, "live state back in Redis", site)
    wait_until(lambda: live.hget("fabmeter:machine:printer-1", "online") == "1", 15,
               "printer-1 shown online again after the Redis restart", site)  # fmt: skip
    site.check(jobs=site.settle())
    assert site.billing is not None and site.billing.poll() is None
