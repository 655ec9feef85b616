"""The agent's link to the broker under faults: down at boot, silent, reset mid-backlog, one-way, flapping."""

from __future__ import annotations

import time

import pytest

from tests.faults.site import Site, wait_until

pytestmark = pytest.mark.faults


def test_a_clean_day_is_billed_exactly(site: Site) -> None:
    site.start()
    site.start_agent("pi-printer")
    site.start_agent("pi-laser")
    site.laser_session(4)
    site.printer.wait_printing(True)  # type: ignore[union-attr]
    jobs = site.settle()
    site.check(jobs=jobs)
    assert not site.rejected()


def test_broker_unreachable_when_the_agent_boots(site: Site) -> None:
    """The agent boots with no broker for ~20 s, meters two prints offline, then delivers them."""
    site.start()
    agent = site.add_agent("pi-printer")
    agent.proxy.mode = "reset"  # every connection refused
    site.start_agent("pi-printer", wait_connected=False)
    wait_until(lambda: site.outbox_count("pi-printer") >= 8, 40, "two prints metered offline", site)
    assert site.inbox_count() == 0
    assert "connected to the broker" not in site.agent_log("pi-printer")
    agent.proxy.mode = "pass"
    site.wait_agent_connected("pi-printer", timeout=45)  # reconnect back-off is at most 30 s
    site.check(jobs=site.settle(), min_jobs=2)


def test_silent_link_longer_than_the_keepalive(site: Site) -> None:
    """No FIN, no RST: bytes vanish for 3x the keepalive; both ends notice, nothing is lost."""
    site.start()
    agent = site.start_agent("pi-printer")
    site.printer.wait_printing(True)  # type: ignore[union-attr]
    agent.proxy.mode = "blackhole"
    wait_until(lambda: "disconnected from the broker" in site.agent_log("pi-printer"), 20,
               "the agent to notice the silent link", site)  # fmt: skip
    time.sleep(3 * site.keepalive - 8)
    agent.proxy.reset_all()  # the dead connections are gone for good (a NAT forgot them)
    agent.proxy.mode = "pass"
    wait_until(lambda: site.agent_log("pi-printer").count("connected to the broker") >= 2, 45,
               "the agent to reconnect", site)  # fmt: skip
    site.check(jobs=site.settle(), min_jobs=2)


def test_reset_during_a_backlog_larger_than_the_window(site: Site) -> None:
    site.start()
    agent = site.add_agent("pi-printer")
    agent.proxy.mode = "reset"
    site.start_agent("pi-printer", wait_connected=False)
    wait_until(lambda: site.outbox_count("pi-printer") >= 12, 45, "three prints metered offline", site)
    backlog = site.outbox_count("pi-printer")
    assert backlog > 2 * site.window
    agent.proxy.delay_s = 0.3
    agent.proxy.mode = "delay"  # a slow link: the backlog drains a few events at a time
    wait_until(lambda: site.inbox_count() >= 2, 45, "the backlog to start draining", site)
    assert site.outbox_count("pi-printer") > 0, "the backlog drained before the reset"
    agent.proxy.reset_all()
    agent.proxy.mode = "pass"
    site.check(jobs=site.settle(), min_jobs=3)


def test_acks_lost_then_delivered(site: Site) -> None:
    """Only broker→agent traffic is lost: billing commits, the agent keeps every row until acks come."""
    site.start()
    agent = site.start_agent("pi-printer")
    agent.proxy.drop_downstream = True
    wait_until(lambda: site.printer.jobs_done() >= 2, 40, "two prints", site)  # type: ignore[union-attr]
    committed = site.inbox_count()
    assert committed >= 1, "nothing reached billing while only acks were lost"
    assert site.outbox_count("pi-printer") >= committed, "rows left the outbox without billing's ack"
    agent.proxy.drop_downstream = False
    agent.proxy.reset_all()
    site.check(jobs=site.settle(), min_jobs=2)


def test_a_link_that_flaps_for_a_minute(site: Site) -> None:
    import random

    rng = random.Random(8)
    site.start()
    agent = site.start_agent("pi-printer")
    site.start_agent("pi-laser")
    until = time.monotonic() + 45
    while time.monotonic() < until:
        agent.proxy.mode = rng.choice(["pass", "blackhole", "reset", "delay"])
        site.proxy("pi-laser").mode = rng.choice(["pass", "reset"])
        if rng.random() < 0.3:
            agent.proxy.reset_all()
        time.sleep(rng.uniform(0.5, 4))
    for proxy in (agent.proxy, site.proxy("pi-laser")):
        proxy.mode = "pass"
    site.laser_session(3)  # the laser works again once the link is back
    site.check(jobs=site.settle(), min_jobs=4)
