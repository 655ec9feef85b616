"""OctoPrint: a job is one run of a file, and OctoPrint's own figures win where the agent was blind.

The fake answers as OctoPrint 1.11 documents and does: ``GET /api/job`` (docs.octoprint.org,
"Job operations": ``job.file{name,origin,path,date}``, ``job.filament.tool0.length``,
``progress{completion,printTime,printTimeLeft}``, ``state``) and ``GET /api/printer``
(``state.flags``: operational, printing, paused, error, closedOrError…; 409 while no printer
is connected). Completion stays at 100 and printTime frozen while a finished job is shown;
a new print of the same file resets printTime and drops completion to 0
(``src/octoprint/printer/standard.py`` ``_setProgressData``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent.machines.memory import Scratch
from agent.machines.octoprint import OctoPrint
from agent.sessions import Pending, Track, advance, dump_track, load_track
from agent.snapshot import MachineSnapshot, Now
from tests.agent.fake_octoprint import FakeOctoPrint

NS = 1_000_000_000
FLAGS = ("operational", "printing", "paused", "pausing", "cancelling", "finishing", "error", "closedOrError", "ready")


@pytest.fixture
def octo() -> Iterator[FakeOctoPrint]:
    with FakeOctoPrint(api_key="k") as fake:
        yield fake


def show(octo: FakeOctoPrint, state: str, completion: float | None = None, print_time: int | None = None,
         *, file: str | None = "cube.gcode", length: float | None = 80.0) -> None:  # fmt: skip
    """``state``: Printing / Paused / Operational / Error."""
    on = {"Printing": ("operational", "printing"), "Paused": ("operational", "paused"),
          "Operational": ("operational", "ready"), "Error": ("error", "closedOrError")}[state]  # fmt: skip
    octo.answer("/api/printer", {"state": {"text": state, "flags": {f: f in on for f in FLAGS}},
                                 "temperature": {"tool0": {"actual": 210.0, "target": 210.0}}})  # fmt: skip
    job: dict[str, Any] = {"file": None, "filament": None, "estimatedPrintTime": None}
    if file:
        job["file"] = {"name": file, "origin": "local", "path": file, "date": 1764140000, "size": 123456}
        job["filament"] = {"tool0": {"length": length, "volume": 0.2}} if length is not None else None
    left = None if completion is None or print_time is None else 40 - print_time
    octo.answer("/api/job", {"job": job, "state": state, "progress": {
        "completion": completion, "filepos": None, "printTime": print_time, "printTimeLeft": left}})  # fmt: skip


def clock(t: float, run: str = "1") -> Now:
    return Now(int(t * NS), 1_700_000_000 * NS + int(t * NS), True, f"kernel-boot-a.{run}")


def follow(track: Track, snap: MachineSnapshot, now: Now) -> tuple[Track, list[Pending]]:
    return advance(track, snap, now)


def ended(events: list[Pending], kind: str = "job_ended") -> list[Any]:
    return [e.data for e in events if e.type == kind]


def test_the_same_file_printed_four_times_back_to_back_is_four_jobs(octo: FakeOctoPrint) -> None:
    """A queue plugin starts the file again within a poll: printTime resets, completion falls."""
    printer, track, events, t = OctoPrint("printer-1", url=octo.url, api_key="k"), Track("printer-1", "printer"), [], 0
    show(octo, "Operational")
    for _ in range(4):
        for completion, print_time in ((5.0, 2), (50.0, 20), (100.0, 39)):
            show(octo, "Printing", completion, print_time)
            t += 10
            track, more = follow(track, printer.poll(), clock(t))
            events += more
    show(octo, "Operational", 100.0, 40)
    track, more = follow(track, printer.poll(), clock(t + 10))
    events += more
    jobs = ended(events)
    assert [j.outcome for j in jobs] == ["completed"] * 4
    assert sum(j.filament_mm for j in jobs) == 320.0
    assert len({e.session for e in events if e.type == "job_started"}) == 4


def test_a_paused_job_and_its_finished_view_shown_for_hours_are_one_job(octo: FakeOctoPrint) -> None:
    printer, track, events = OctoPrint("printer-1", url=octo.url, api_key="k"), Track("printer-1", "printer"), []
    show(octo, "Operational")
    for t, (state, completion, print_time) in enumerate([("Printing", 10.0, 4), ("Paused", 20.0, 8),
                                                         ("Printing", 20.0, 9), ("Printing", 90.0, 36),
                                                         ("Operational", 100.0, 40)] + [("Operational", 100.0, 40)] * 5):
        show(octo, state, completion, print_time)
        track, more = follow(track, printer.poll(), clock(t * 10))
        events += more
    assert [j.outcome for j in ended(events)] == ["completed"]


def test_after_an_agent_restart_the_finished_job_is_billed_octoprints_print_time(octo: FakeOctoPrint) -> None:
    """The agent was down from 60 % until after the end of an 83 s print: the job is 83 s (OctoPrint's
    printTime, source recorded), and the session ended with the job, not by a power loss."""
    memory = Scratch()
    printer, track = OctoPrint("printer-1", url=octo.url, api_key="k", memory=memory), Track("printer-1", "printer")
    show(octo, "Operational")
    track, _ = follow(track, printer.poll(), clock(0))
    show(octo, "Printing", 1.0, 1)
    track, _ = follow(track, printer.poll(), clock(1))
    show(octo, "Printing", 60.0, 50)
    track, _ = follow(track, printer.poll(), clock(30))
    saved = load_track(dump_track(track))  # what the outbox kept; the agent stops here
    show(octo, "Operational", 100.0, 83)
    again = OctoPrint("printer-1", url=octo.url, api_key="k", memory=memory)
    _, events = follow(saved, again.poll(), clock(120, run="2"))
    (job,) = ended(events)
    (session,) = ended(events, "session_ended")
    assert (job.outcome, job.job_s, job.time_source, job.filament_mm) == ("completed", 83, "controller", 80.0)
    assert (session.reason, session.job_s) == ("job_end", 83)


def test_a_print_that_died_while_octoprint_was_unreachable_is_failed_and_the_outage_not_billed(
    octo: FakeOctoPrint,
) -> None:
    """OctoPrint stopped for 50 s mid-print and the print stopped with it: when it answers again it
    shows no job. The 50 s are not job or busy time, and the print failed (not cancelled)."""
    printer, track = OctoPrint("printer-1", url=octo.url, api_key="k"), Track("printer-1", "printer")
    show(octo, "Operational")
    track, _ = follow(track, printer.poll(), clock(0))
    for t in range(1, 54, 4):
        show(octo, "Printing", t * 1.0, t)
        track, _ = follow(track, printer.poll(), clock(t))
    for t in range(54, 104, 5):  # what the main loop makes of MachineUnreachable
        track, _ = follow(track, MachineSnapshot("printer-1", "offline"), clock(t))
    show(octo, "Operational", file=None)
    _, events = follow(track, printer.poll(), clock(104))
    (job,) = ended(events)
    (session,) = ended(events, "session_ended")
    assert (job.outcome, job.job_s) == ("failed", 52)
    assert (session.job_s, session.busy_s) == (52, 52)


def test_an_outage_during_which_the_print_went_on_is_job_time(octo: FakeOctoPrint) -> None:
    printer, track = OctoPrint("printer-1", url=octo.url, api_key="k"), Track("printer-1", "printer")
    show(octo, "Operational")
    track, _ = follow(track, printer.poll(), clock(0))
    show(octo, "Printing", 10.0, 4)
    track, _ = follow(track, printer.poll(), clock(1))
    track, _ = follow(track, MachineSnapshot("printer-1", "offline"), clock(20))
    show(octo, "Printing", 80.0, 31)
    track, _ = follow(track, printer.poll(), clock(31))
    show(octo, "Operational", 100.0, 40)
    _, events = follow(track, printer.poll(), clock(41))
    (job,) = ended(events)
    assert (job.outcome, job.job_s) == ("completed", 40)


def test_a_printer_disconnected_mid_print_fails_the_job_without_billing_the_outage(octo: FakeOctoPrint) -> None:
    """OctoPrint answers 409 on /api/printer while the printer is disconnected, then an error state."""
    printer, track = OctoPrint("printer-1", url=octo.url, api_key="k"), Track("printer-1", "printer")
    show(octo, "Operational")
    track, _ = follow(track, printer.poll(), clock(0))
    show(octo, "Printing", 10.0, 4)
    track, _ = follow(track, printer.poll(), clock(1))
    show(octo, "Printing", 60.0, 69)
    track, _ = follow(track, printer.poll(), clock(70))
    octo.routes["/api/printer"] = (409, b'{"error": "Printer is not operational"}')
    for t in range(75, 131, 5):
        snap = printer.poll()
        assert snap.state == "offline"
        track, _ = follow(track, snap, clock(t))
    show(octo, "Error", 60.0, 69)
    _, events = follow(track, printer.poll(), clock(131))
    (job,) = ended(events)
    assert (job.outcome, job.job_s) == ("failed", 69)


def files(octo: FakeOctoPrint, analysis_mm: float | None, gcode: bytes | None) -> None:
    """``GET /api/files/local/cube.gcode`` (docs.octoprint.org "File operations": ``gcodeAnalysis``
    appears once the analysis ran) and the file itself under ``/downloads/files/local/``."""
    info: dict[str, Any] = {"name": "cube.gcode", "origin": "local", "path": "cube.gcode", "type": "machinecode"}
    if analysis_mm is not None:
        info["gcodeAnalysis"] = {"estimatedPrintTime": 40.0, "filament": {"tool0": {"length": analysis_mm}}}
    octo.answer("/api/files/local/cube.gcode", info)
    octo.routes["/downloads/files/local/cube.gcode"] = (200, gcode) if gcode is not None else (404, b"")


def print_cube(octo: FakeOctoPrint, printer: OctoPrint, end_polls: int) -> list[Pending]:
    track, events = Track("printer-1", "printer"), []
    show(octo, "Operational")
    track, _ = follow(track, printer.poll(), clock(0))
    for t, completion in ((1, 10.0), (20, 60.0), (40, 99.0)):
        show(octo, "Printing", completion, t, length=None)
        track, more = follow(track, printer.poll(), clock(t))
        events += more
    show(octo, "Operational", 100.0, 40, length=None)
    for t in range(41, 41 + end_polls):
        track, more = follow(track, printer.poll(), clock(t))
        events += more
        if t == 41:
            assert not ended(events)  # the end waits for the estimate OctoPrint still owes
            files(octo, 1234.5, None)  # the analysis ran once OctoPrint went idle
    return events


def test_an_estimate_that_comes_after_the_end_is_billed(octo: FakeOctoPrint) -> None:
    files(octo, None, b"G28\nG1 X10\n")
    events = print_cube(octo, OctoPrint("printer-1", url=octo.url, api_key="k"), end_polls=3)
    (job,) = ended(events)
    assert (job.outcome, job.filament_mm, job.filament_source, job.job_s) == ("completed", 1234.5, "estimate", 40)


def test_the_slicers_comment_is_the_fallback_estimate(octo: FakeOctoPrint) -> None:
    """PrusaSlicer writes ``; filament used [mm] = …`` near the end of the file."""
    files(octo, None, b"G28\nG1 X10\n" * 100 + b"; filament used [mm] = 1830.55\n; filament used [g] = 5.46\n")
    printer = OctoPrint("printer-1", url=octo.url, api_key="k")
    show(octo, "Printing", 10.0, 4, length=None)
    snap = printer.poll()
    assert snap.job is not None and (snap.job.estimate_mm, snap.job.estimate_pending) == (1830.55, False)


def test_an_estimate_that_never_comes_ends_the_job_after_the_wait(octo: FakeOctoPrint) -> None:
    files(octo, None, None)
    printer, track, events = OctoPrint("printer-1", url=octo.url, api_key="k"), Track("printer-1", "printer"), []
    show(octo, "Printing", 10.0, 4, length=None)
    track, more = follow(track, printer.poll(), clock(1))
    show(octo, "Operational", 100.0, 40, length=None)
    for t in (41, 60, 70, 72):
        track, more = follow(track, printer.poll(), clock(t))
        events += more
    (job,) = ended(events)
    assert (job.outcome, job.filament_mm, job.job_s) == ("completed", None, 40)
    assert [e.type for e in events][-1] == "session_ended"


def prints(octo: FakeOctoPrint, last: dict[str, Any] | None) -> None:
    """``GET /api/files/local/cube.gcode`` with ``prints {success, failure, last {date, printTime,
    success}}``: OctoPrint logs each print when it is done, cancelled or fails
    (``src/octoprint/printer/standard.py`` ``_on_print_done``/``on_comm_print_job_cancelled`` call
    ``fileManager.log_print``; ``src/octoprint/server/api/files.py`` shows it)."""
    info: dict[str, Any] = {"name": "cube.gcode", "origin": "local", "path": "cube.gcode",
                            "gcodeAnalysis": {"filament": {"tool0": {"length": 80.0}}}}  # fmt: skip
    if last is not None:
        info["prints"] = {"success": int(last["success"]), "failure": int(not last["success"]), "last": last}
    octo.answer("/api/files/local/cube.gcode", info)


@pytest.mark.parametrize(("success", "outcome", "filament"), [(True, "completed", 80.0), (False, "cancelled", 77.6)])
def test_a_run_replaced_between_two_polls_ends_as_octoprint_logged_it(
    octo: FakeOctoPrint, success: bool, outcome: str, filament: float
) -> None:
    """Last seen at 97 %, the same file started again before the next poll: OctoPrint's log of the
    file's last print says whether the run completed, not the progress the agent happened to see."""
    printer, track, events = OctoPrint("printer-1", url=octo.url, api_key="k"), Track("printer-1", "printer"), []
    prints(octo, None)
    show(octo, "Printing", 97.0, 38)
    track, events = follow(track, printer.poll(), clock(1))
    prints(octo, {"date": 1764150040, "printTime": 39.6, "success": success})
    show(octo, "Printing", 2.0, 1)
    track, more = follow(track, printer.poll(), clock(2))
    events += more
    (first,) = ended(events)
    assert (first.outcome, first.filament_mm) == (outcome, filament)
    assert [e.type for e in events].count("job_started") == 2


def test_an_older_log_does_not_decide_a_replaced_run(octo: FakeOctoPrint) -> None:
    """The log of the print before (a cancel at 5 s) written after this run began: not this run's end."""
    printer, track = OctoPrint("printer-1", url=octo.url, api_key="k"), Track("printer-1", "printer")
    prints(octo, None)
    show(octo, "Printing", 99.0, 38)
    track, events = follow(track, printer.poll(), clock(1))
    prints(octo, {"date": 1764150000, "printTime": 5.0, "success": False})
    show(octo, "Printing", 2.0, 1)
    _, more = follow(track, printer.poll(), clock(2))
    (first,) = ended(events + more)
    assert first.outcome == "cancelled"  # judged from what was seen (99 % < 99.5 %)


def test_a_cancel_as_octoprint_shows_it_then_the_same_file_again_is_two_jobs(octo: FakeOctoPrint) -> None:
    """OctoPrint 1.11.8 clears ``progress`` (completion, printTime: null) as soon as a cancel begins,
    "Cancelling" then "Operational" (seen with the real OctoPrint in tests/agent/test_real_octoprint.py)."""
    printer, track, events = OctoPrint("printer-1", url=octo.url, api_key="k"), Track("printer-1", "printer"), []
    for t, state, completion, print_time in ((1, "Printing", 10.0, 4), (2, "Printing", 40.0, 16),
                                              (3, "Cancelling", None, None), (4, "Printing", 3.0, 1),
                                              (5, "Operational", 100.0, 40)):  # fmt: skip
        show(octo, "Printing" if state == "Cancelling" else state, completion, print_time)
        if state == "Cancelling":  # flags as OctoPrint's printer/standard.py _getStateFlags gives them
            on = ("operational", "cancelling")
            octo.answer("/api/printer", {"state": {"text": state, "flags": {f: f in on for f in FLAGS}}})
            octo.routes["/api/job"] = (200, octo.routes["/api/job"][1].replace(b'"Printing"', b'"Cancelling"'))
        track, more = follow(track, printer.poll(), clock(t * 10))
        events += more
    assert [(j.outcome, j.filament_mm) for j in ended(events)] == [("cancelled", 32.0), ("completed", 80.0)]


def test_a_printer_that_stopped_on_an_error_fails_the_job_at_once(octo: FakeOctoPrint) -> None:
    """An emergency stop (M112) or a halted board: OctoPrint 1.11.8 closes the connection, answers
    409 on ``/api/printer`` and "Offline after error" with the ``error`` on ``/api/job``, progress null
    (``src/octoprint/util/comm.py`` ``getStateString``, ``src/octoprint/server/api/job.py``; seen
    with the real OctoPrint). The job fails now, not when someone reconnects the printer."""
    printer, track = OctoPrint("printer-1", url=octo.url, api_key="k"), Track("printer-1", "printer")
    show(octo, "Printing", 40.0, 16)
    track, events = follow(track, printer.poll(), clock(10))
    octo.routes["/api/printer"] = (409, b'{"error": "Printer is not operational"}')
    job = {"file": {"name": "cube.gcode", "origin": "local", "path": "cube.gcode", "date": 1764140000},
           "filament": {"tool0": {"length": 80.0}}}  # fmt: skip
    octo.answer("/api/job", {"job": job, "state": "Offline after error", "error": "Printer halted. kill() called!",
                             "progress": {"completion": None, "printTime": None, "printTimeLeft": None}})  # fmt: skip
    snap = printer.poll()
    assert (snap.state, snap.detail) == ("error", "Offline after error: Printer halted. kill() called!")
    track, more = follow(track, snap, clock(11))
    (ended_job,) = ended(events + more)
    assert (ended_job.outcome, ended_job.filament_mm, ended_job.job_s) == ("failed", 32.0, 1)
    assert [e.type for e in more][-1] == "session_ended" and track.session is None
