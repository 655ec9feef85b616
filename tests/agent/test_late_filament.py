"""Filament late is not filament lost: an estimate OctoPrint gives after the job ended reaches billing.

OctoPrint analyses a file only while idle (``gcodeAnalysis.runAt: idle``, ``src/octoprint/
filemanager/analysis.py`` pauses its queue while printing), so a big file printed right after its
upload has no ``job.filament`` in ``GET /api/job`` until some time after the print ended; then
``GET /api/files/local/<path>`` gives it in ``gcodeAnalysis.filament.tool0.length``
(docs.octoprint.org, "File operations"). The fake answers as those do; the slicer comment
fallback finds nothing (the file has none), as with a G-code from a slicer that writes no total.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent.machines.memory import Scratch
from agent.machines.octoprint import LATE_EVERY_S, OctoPrint
from agent.sessions import Pending, Rules, Track, advance, dump_track, load_track
from tests.agent.fake_octoprint import FakeOctoPrint
from tests.agent.test_octoprint_runs import FLAGS, clock

WAIT = Rules(filament_wait_s=5.0)


@pytest.fixture
def octo() -> Iterator[FakeOctoPrint]:
    with FakeOctoPrint(api_key="k") as fake:
        yield fake


class Wall:
    def __init__(self) -> None:
        self.t = 1_764_150_000.0

    def __call__(self) -> float:
        return self.t


def show(octo: FakeOctoPrint, state: str, file: str, completion: float, print_time: int,
         length: float | None = None) -> None:  # fmt: skip
    on = {"Printing": ("operational", "printing"), "Operational": ("operational", "ready")}[state]
    octo.answer("/api/printer", {"state": {"text": state, "flags": {f: f in on for f in FLAGS}}})
    job: dict[str, Any] = {"file": {"name": file, "origin": "local", "path": file, "date": 1764140000},
                           "filament": {"tool0": {"length": length}} if length is not None else None}  # fmt: skip
    octo.answer("/api/job", {"job": job, "state": state, "progress": {
        "completion": completion, "printTime": print_time, "printTimeLeft": None}})  # fmt: skip


def analysed(octo: FakeOctoPrint, file: str, mm: float | None) -> None:
    info: dict[str, Any] = {"name": file, "origin": "local", "path": file, "type": "machinecode"}
    if mm is not None:
        info["gcodeAnalysis"] = {"estimatedPrintTime": 40.0, "filament": {"tool0": {"length": mm}}}
    octo.answer(f"/api/files/local/{file}", info)
    octo.routes[f"/downloads/files/local/{file}"] = (200, b"G28\nG1 X10 E5\n")


class Machine:
    """The driver and the agent's pure core, polled together with a clock the test moves."""

    def __init__(self, octo: FakeOctoPrint, rules: Rules = WAIT, memory: Scratch | None = None,
                 track: Track | None = None) -> None:  # fmt: skip
        self.wall, self.memory, self.rules = Wall(), memory if memory is not None else Scratch(), rules
        self.driver = OctoPrint("printer-1", url=octo.url, api_key="k", memory=self.memory, wall=self.wall)
        self.track, self.events, self.t = track or Track("printer-1", "printer"), [], 0.0

    def poll(self, seconds: float = 1.0) -> list[Pending]:
        self.t += seconds
        self.wall.t += seconds
        self.track, more = advance(self.track, self.driver.poll(), clock(self.t), self.rules)
        self.events += more
        return more


def of(events: list[Pending], kind: str) -> list[Pending]:
    return [e for e in events if e.type == kind]


def test_an_estimate_after_the_wait_is_a_correction_to_the_same_session(octo: FakeOctoPrint) -> None:
    analysed(octo, "big.gcode", None)
    m = Machine(octo)
    show(octo, "Printing", "big.gcode", 50.0, 20)
    m.poll()
    show(octo, "Operational", "big.gcode", 100.0, 40)
    for _ in range(7):
        m.poll()
    (ended,) = of(m.events, "job_ended")
    assert ended.data.filament_mm is None and of(m.events, "session_ended")  # the wait ran out
    analysed(octo, "big.gcode", 5120.4)
    m.poll(LATE_EVERY_S)
    (corrected,) = of(m.events, "job_corrected")
    assert corrected.session == ended.session
    assert (corrected.data.job, corrected.data.filament_mm, corrected.data.filament_source) == (
        "big.gcode", 5120.4, "estimate")  # fmt: skip
    assert corrected.data.job_key.startswith("local:big.gcode@1764140000#")
    for _ in range(3):
        m.poll(LATE_EVERY_S)
    assert len(of(m.events, "job_corrected")) == 1 and m.track.owed == ()


def test_a_cancelled_run_is_corrected_pro_rata_after_another_file_started(octo: FakeOctoPrint) -> None:
    """A queue starts the next file at once: the first file is analysed later, never shown again."""
    analysed(octo, "big.gcode", None)
    m = Machine(octo, Rules(filament_wait_s=0))
    show(octo, "Printing", "big.gcode", 25.0, 10)
    m.poll()
    show(octo, "Printing", "small.gcode", 1.0, 1, length=300.0)
    m.poll()
    (first, _) = [e.session for e in of(m.events, "job_started")]
    assert [e.data.filament_mm for e in of(m.events, "job_ended")] == [None]
    analysed(octo, "big.gcode", 4000.0)
    m.poll(LATE_EVERY_S)
    (corrected,) = of(m.events, "job_corrected")
    assert (corrected.session, corrected.data.job, corrected.data.filament_mm) == (first, "big.gcode", 1000.0)


def test_what_is_owed_survives_an_agent_restart(octo: FakeOctoPrint) -> None:
    analysed(octo, "big.gcode", None)
    m = Machine(octo, Rules(filament_wait_s=0))
    show(octo, "Printing", "big.gcode", 60.0, 24)
    m.poll()
    show(octo, "Operational", "big.gcode", 100.0, 40)
    m.poll()
    (ended,) = of(m.events, "job_ended")
    assert ended.data.filament_mm is None
    # the agent stops; the outbox keeps its track and the driver's memory
    again = Machine(octo, Rules(filament_wait_s=0), memory=Scratch(m.memory), track=load_track(dump_track(m.track)))
    again.poll()
    assert not again.events
    analysed(octo, "big.gcode", 2000.0)
    again.poll(LATE_EVERY_S)
    (corrected,) = of(again.events, "job_corrected")
    assert (corrected.session, corrected.data.filament_mm) == (ended.session, 2000.0)


def test_a_job_ended_with_its_estimate_owes_nothing(octo: FakeOctoPrint) -> None:
    analysed(octo, "cube.gcode", 80.0)
    m = Machine(octo)
    show(octo, "Printing", "cube.gcode", 50.0, 20, length=80.0)
    m.poll()
    show(octo, "Operational", "cube.gcode", 100.0, 40, length=80.0)
    for _ in range(3):
        m.poll(LATE_EVERY_S)
    assert [e.data.filament_mm for e in of(m.events, "job_ended")] == [80.0]
    assert not of(m.events, "job_corrected") and m.track.owed == ()
