"""Moonraker: a job is one entry of its job history, keyed by ``job_id``.

Written from Arksine/moonraker ``moonraker/components/history.py``: ``GET /server/history/list``
(``limit``, ``order=desc``) answers ``{"result": {"count", "jobs": [{job_id (6 hex digits),
filename, status, start_time, end_time, print_duration, total_duration, filament_used}]}}``;
``GET /server/history/job?uid=<job_id>`` answers ``{"result": {"job": {...}}}``; a job's
``status`` is ``in_progress`` until ``finish_job`` sets ``completed``, ``cancelled``, ``error``,
``klippy_shutdown``, ``klippy_disconnect``, ``server_exit`` (or ``interrupted`` at the next
start). ``print_stats`` (Klipper ``klippy/extras/print_stats.py``): state ``printing``,
``paused``, ``complete``, ``cancelled``, ``error``, ``standby``; ``print_duration`` excludes pauses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agent.machines.memory import Scratch
from agent.machines.moonraker import Moonraker
from agent.sessions import Pending, Track, advance, dump_track, load_track
from agent.snapshot import Now
from tests.agent.fake_octoprint import FakeOctoPrint

NS = 1_000_000_000


@pytest.fixture
def klipper() -> Iterator[FakeOctoPrint]:
    with FakeOctoPrint(api_key="k") as fake:
        yield fake


def history_job(job_id: int, filename: str, status: str, duration: float, used: float) -> dict[str, Any]:
    return {"job_id": f"{job_id:06X}", "filename": filename, "status": status, "start_time": 1.7e9 + job_id,
            "end_time": None if status == "in_progress" else 1.7e9 + job_id + duration,
            "print_duration": duration, "total_duration": duration + 5, "filament_used": used, "exists": True}  # fmt: skip


def show(klipper: FakeOctoPrint, state: str, filename: str, progress: float, duration: float, used: float,
         jobs: list[dict[str, Any]]) -> None:  # fmt: skip
    """``jobs``: the history, newest last."""
    status = {"print_stats": {"state": state, "filename": filename, "print_duration": duration,
                              "filament_used": used},
              "virtual_sdcard": {"progress": progress}, "webhooks": {"state": "ready"},
              "extruder": {"temperature": 210.0}}  # fmt: skip
    klipper.answer("/printer/objects/query", {"result": {"eventtime": 1.0, "status": status}})
    klipper.answer("/server/history/list", {"result": {"count": 1, "jobs": jobs[-1:]}})
    for job in jobs:
        klipper.routes[f"/server/history/job?uid={job['job_id']}"] = (200, json.dumps({"result": {"job": job}}).encode())


def clock(t: float, run: str = "1") -> Now:
    return Now(int(t * NS), 1_700_000_000 * NS + int(t * NS), True, f"kernel-boot-a.{run}")


def ended(events: list[Pending], kind: str = "job_ended") -> list[Any]:
    return [e.data for e in events if e.type == kind]


@pytest.mark.parametrize("second_file", ["part.gcode", "other.gcode"])
def test_a_run_replaced_between_two_polls_ends_as_the_history_says(klipper: FakeOctoPrint, second_file: str) -> None:
    """The same file queued again, or another file started, between two polls: two jobs, and the
    first one completed (its history entry), with the filament it measured."""
    printer, track, events = Moonraker("printer-2", url=klipper.url, api_key="k"), Track("printer-2", "printer"), []
    first = history_job(1, "part.gcode", "in_progress", 30.0, 400.0)
    show(klipper, "printing", "part.gcode", 0.4, 30.0, 400.0, [first])
    track, more = advance(track, printer.poll(), clock(1))
    events += more
    done = history_job(1, "part.gcode", "completed", 75.0, 1000.0)
    second = history_job(2, second_file, "in_progress", 2.0, 10.0)
    show(klipper, "printing", second_file, 0.01, 2.0, 10.0, [done, second])
    track, more = advance(track, printer.poll(), clock(80))
    events += more
    (job,) = ended(events)
    assert (job.outcome, job.filament_mm, job.filament_source) == ("completed", 1000.0, "measured")
    assert [e.type for e in events].count("job_started") == 2


def test_after_an_agent_restart_the_job_is_billed_moonrakers_print_duration(klipper: FakeOctoPrint) -> None:
    memory = Scratch()
    printer, track = Moonraker("printer-2", url=klipper.url, api_key="k", memory=memory), Track("printer-2", "printer")
    show(klipper, "standby", "part.gcode", 0.0, 0.0, 0.0, [history_job(6, "part.gcode", "completed", 50, 20)])
    track, _ = advance(track, printer.poll(), clock(0))
    running = history_job(7, "part.gcode", "in_progress", 10.0, 100.0)
    show(klipper, "printing", "part.gcode", 0.1, 10.0, 100.0, [running])
    track, _ = advance(track, printer.poll(), clock(1))
    show(klipper, "printing", "part.gcode", 0.5, 40.0, 500.0, [running])
    track, _ = advance(track, printer.poll(), clock(41))
    saved = load_track(dump_track(track))
    show(klipper, "complete", "part.gcode", 1.0, 95.0, 1000.0, [history_job(7, "part.gcode", "completed", 95.0, 1000.0)])
    again = Moonraker("printer-2", url=klipper.url, api_key="k", memory=memory)
    _, events = advance(saved, again.poll(), clock(200, run="2"))
    (job,) = ended(events)
    assert (job.outcome, job.job_s, job.time_source, job.filament_mm) == ("completed", 95, "controller", 1000.0)
