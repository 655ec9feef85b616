"""Processes killed with SIGKILL at awkward moments: the agent, billing, the broker."""

from __future__ import annotations

import random
import signal
import time

import pytest

from tests.faults.site import Site, wait_until

pytestmark = pytest.mark.faults


def test_agent_killed_at_random_moments_of_its_outbox(site: Site) -> None:
    """The agent offers no fault hook, so it is killed at random moments while events stream
    (inserted, published, PUBACKed, acked rows being deleted) and restarted; after every kill
    the outbox and the ledger agree: nothing lost, nothing charged twice, no seq gap."""
    rng = random.Random(6)
    site.window = 2  # a small window: more of the stream is in flight at any moment
    site.start()
    site.start_agent("pi-printer")
    kills = 0
    while kills < 6 or site.printer.jobs_done() < 3:  # type: ignore[union-attr]
        time.sleep(rng.uniform(0.3, 2.5))
        site.kill_agent("pi-printer")
        kills += 1
        site.start_agent("pi-printer", wait_connected=False)
    site.wait_agent_connected("pi-printer")
    site.check(jobs=site.settle(), min_jobs=2)


def test_billing_killed_before_and_after_its_commits(site: Site) -> None:
    rng = random.Random(7)
    site.start()
    site.start_agent("pi-printer")
    kills = 0
    while kills < 4 or site.printer.jobs_done() < 2:  # type: ignore[union-attr]
        time.sleep(rng.uniform(0.5, 3.0))
        site.kill_billing()
        kills += 1
        site.start_billing()
    site.check(jobs=site.settle(), min_jobs=2)


def test_mosquitto_killed_with_messages_queued(site: Site) -> None:
    """Billing is away, the broker holds its queue, then the broker dies with SIGKILL and restarts."""
    site.start()
    site.start_agent("pi-printer")
    site.kill_billing()
    # two prints published and PUBACKed by the broker, never acked by billing
    wait_until(lambda: site.outbox_count("pi-printer") >= 8, 30, "two prints queued for billing", site)
    assert site.mosquitto is not None
    site.mosquitto.kill()
    time.sleep(1)
    site.mosquitto.start()
    site.start_billing()
    site.check(jobs=site.settle(), min_jobs=2)


def test_billing_down_while_agents_keep_publishing(site: Site) -> None:
    """Billing is stopped for a while: prints go on, a visitor badges in on the allow-list."""
    site.start()
    site.start_agent("pi-printer")
    site.start_agent("pi-laser")
    wait_until(lambda: "allowlist" in site.agents["pi-laser"].outbox.read_bytes().decode(errors="replace")
               or site.outbox_count("pi-laser") == 0, 10, "the allow-list", site)  # fmt: skip
    time.sleep(1)
    site.kill_billing()
    site.laser_session(4)  # no answer from billing: accepted offline from the allow-list
    wait_until(lambda: site.printer.jobs_done() >= 2, 30, "two prints while billing is down", site)  # type: ignore[union-attr]
    assert site.inbox_count() == 0 or site.outbox_count("pi-printer") > 0
    site.start_billing()
    site.check(jobs=site.settle(), min_jobs=2)
    laser = site.sessions("laser-1")
    assert [s.auth for s in laser] == ["offline"] and laser[0].visit_id == site.visit_id


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["restart", "kill-9"])
def test_agent_restarted_in_the_middle_of_a_print(site: Site, sig: signal.Signals) -> None:
    """The print goes on while the agent restarts: one session, billed for the whole print."""
    site.job_s, site.idle_s = 16.0, 2.0
    site.start()
    site.start_agent("pi-printer")
    site.printer.wait_printing(True)  # type: ignore[union-attr]
    time.sleep(7)
    site.kill_agent("pi-printer", sig)
    site.start_agent("pi-printer")
    jobs = site.settle()
    site.check(jobs=jobs)
    assert len({s.id for s in site.sessions("printer-1")}) == jobs


@pytest.mark.parametrize("point", ["outbox.after_insert", "link.after_publish", "link.after_puback",
                                   "outbox.while_deleting"])  # fmt: skip
def test_agent_killed_at_each_step_of_its_outbox(site: Site, point: str) -> None:
    """SIGKILL exactly after an insert, after a publish, after a PUBACK, and in the middle of
    deleting acked rows (the DELETE done, not committed); then a restart heals everything."""
    site.start()
    agent = site.add_agent("pi-printer", env={"FABMETER_FAILPOINT": f"{point}:4"})
    site.start_agent("pi-printer", wait_connected=False)
    assert agent.proc is not None
    assert agent.proc.wait(60) == -signal.SIGKILL, site.logs()
    agent.env = {}
    site.start_agent("pi-printer")
    site.check(jobs=site.settle(), min_jobs=1)
