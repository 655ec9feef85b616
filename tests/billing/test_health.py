"""Billing's health: a part is stalled when work waits and it has not moved for stall_s."""

from __future__ import annotations

import json

from billing.health import Parts, read_problems


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_part_is_stalled_only_while_work_waits() -> None:
    clock, waiting = Clock(), {"ingest": 0}
    parts = Parts(stall_s=60, clock=clock)
    parts.add("ingest", lambda: waiting["ingest"])
    clock.now += 600
    assert parts.problems() == []  # idle for ten minutes, nothing waiting: healthy
    waiting["ingest"] = 12
    assert parts.problems() == ["ingest: no progress for 600 s while 12 messages wait"]
    parts.moved("ingest")
    clock.now += 59
    assert parts.problems() == []


def test_restarts_are_counted_in_the_report() -> None:
    parts = Parts(stall_s=60, clock=Clock())
    parts.add("control", lambda: 0)
    parts.restarted("control")
    parts.restarted("control")
    assert parts.report(5.0) == {"at": 5.0, "problems": [], "parts": {"control": {"waiting": 0, "restarts": 2}}}


def test_the_dashboard_reads_the_report() -> None:
    report = json.dumps({"at": 1000.0, "problems": ["ingest: no progress for 75 s while 3 messages wait"]})
    assert read_problems(report, 1010.0) == ["billing ingest: no progress for 75 s while 3 messages wait"]
    assert read_problems(report, 1100.0) == ["billing: no health report for 100 s"]
    assert read_problems(None, 1010.0) == []
    assert read_problems("{", 1010.0) == ["billing: unreadable health report"]
