"""Marlin and GRBL drivers against a pseudo-terminal speaking their dialects, noise included."""

from __future__ import annotations

import time

import pytest

from agent.errors import MachineUnreachable
from agent.machines.grbl import Grbl, parse_report
from agent.machines.marlin import Marlin, print_seconds, temperatures_in
from tests.agent.fake_serial import PtyMachine


class MarlinBoard:
    """A Marlin SD print: ``progress`` bytes of 1000, a filament counter, some noise."""

    def __init__(self) -> None:
        self.printing = False
        self.done = 0
        self.counter_m = 12.5

    def __call__(self, command: str) -> list[str]:
        if command == "M105":
            return ["\x00\xff garbage \xfe", "echo:busy: processing", "ok T:214.8 /215.0 B:60.1 /60.0 T0:214.8 /215.0 @:127 B@:0"]
        if command == "M27":
            return [f"SD printing byte {self.done}/1000" if self.printing else "Not SD printing", "ok"]
        if command == "M31":
            return ["echo:Print time: 1h 2m 3s", "ok"]
        if command == "M78":
            return ["Stats: Prints: 3, Finished: 2, Failed: 1", f"Stats: Filament used: {self.counter_m:.2f}m", "ok"]
        return [f"echo:Unknown command: \"{command}\"", "ok"]


def test_marlin_sd_print_with_measured_filament_and_noise() -> None:
    board = MarlinBoard()
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path)
        idle = printer.poll()
        assert (idle.state, idle.job) == ("idle", None)
        assert idle.temperatures == {"tool0": 214.8, "bed": 60.1}
        board.printing, board.done = True, 250
        snap = printer.poll()
        assert snap.state == "printing" and snap.job is not None
        assert (snap.job.progress, snap.job.elapsed_s, snap.job.filament_mm) == (25.0, 3723, 0.0)
        board.done, board.counter_m = 1000, 14.0
        printer.poll()
        board.printing = False
        pty.send(b"Done printing file\n")  # Marlin's STR_FILE_PRINTED at the end of the file
        done = printer.poll()
        assert done.state == "idle" and done.job is not None
        assert (done.job.outcome, done.job.filament_mm) == ("completed", 1500.0)
        printer.close()


def test_marlin_without_print_statistics_reports_no_filament() -> None:
    def board(command: str) -> list[str]:
        if command == "M27":
            return ["SD printing byte 10/100", "ok"]
        if command == "M78":
            return ['echo:Unknown command: "M78"', "ok"]
        return ["ok"]

    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path)
        assert printer.poll().job.filament_mm is None  # type: ignore[union-attr]
        printer.poll()
        assert pty.commands.count("M78") == 1  # asked once, then remembered
        printer.close()


def test_marlin_silent_board_is_unreachable() -> None:
    with PtyMachine(lambda command: ["echo:start", "garbage"]) as pty:
        printer = Marlin("printer-3", port=pty.path, answer_s=0.3)
        with pytest.raises(MachineUnreachable, match="no 'ok' from the Marlin board"):
            printer.poll()
        printer.close()


def test_missing_serial_port_says_what_to_check() -> None:
    with pytest.raises(MachineUnreachable, match="cannot open serial port /dev/nonexistent-tty"):
        Marlin("printer-3", port="/dev/nonexistent-tty").poll()


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["ok T:210.0 /210.0 B:60.0 /60.0 @:0 B@:0"], {"tool0": 210.0, "bed": 60.0}),
        (["T0:200.5/200 T1:180/0 B:55.2/55"], {"tool0": 200.5, "tool1": 180.0, "bed": 55.2}),
        (["ok T:21.3 /0.0 B:20.9 /0.0 C:25.0 /0.0"], {"tool0": 21.3, "bed": 20.9, "chamber": 25.0}),
        (["echo:busy: processing"], {}),
    ],
)
def test_marlin_temperature_variants(lines: list[str], expected: dict[str, float]) -> None:
    assert temperatures_in(lines) == expected


@pytest.mark.parametrize(("line", "seconds"), [("echo:Print time: 1h 2m 3s", 3723), ("echo:0d 0h 10m 5s", 605), ("Print time: 45s", 45)])
def test_marlin_print_time_variants(line: str, seconds: int) -> None:
    assert print_seconds([line]) == seconds


class GrblBoard:
    def __init__(self) -> None:
        self.reports = ["<Idle|MPos:0.000,0.000,0.000|FS:0,0|WCO:0.000,0.000,0.000>"]

    def __call__(self, command: str) -> list[str]:
        if command == "?":
            return ["[MSG:noise]", "ok", self.reports.pop(0) if len(self.reports) > 1 else self.reports[0]]
        return ["ok"]


@pytest.mark.parametrize(
    ("reports", "states"),
    [
        (["<Run|MPos:1.000,2.000,0.000|FS:1200,800>"], ["busy"]),
        (["<Run|MPos:1.000,2.000,0.000|FS:1200,0>"], ["idle"]),  # moving with the laser off
        (["<Hold:0|MPos:1.000,2.000,0.000|FS:0,800>"], ["idle"]),
        (["<Door:1|MPos:1.000,2.000,0.000|FS:0,0>"], ["idle"]),
        (["<Alarm|MPos:0.000,0.000,0.000|FS:0,0>"], ["error"]),
        # A: is latched between the reports that carry it (with Ov:)
        (["<Run|MPos:0,0,0|F:500|Ov:100,100,100|A:S>", "<Run|MPos:1,0,0|F:500>", "<Run|MPos:2,0,0|F:500|Ov:100,100,100>"], ["busy", "busy", "idle"]),
        (["<Run,MPos:5.529,0.560,7.000,WPos:1.529,-5.440,-0.000>"], ["busy"]),  # GRBL 0.9: Run is a job
    ],
)
def test_grbl_running_means_run_with_spindle_or_laser_on(reports: list[str], states: list[str]) -> None:
    board = GrblBoard()
    board.reports = list(reports)
    with PtyMachine(board, realtime=b"?") as pty:
        laser = Grbl("laser-1", port=pty.path)
        assert [laser.poll().state for _ in states] == states
        laser.close()


def test_grbl_report_parsing() -> None:
    assert parse_report("<Hold:1|MPos:0,0,0|Bf:15,128|FS:0,0|Pn:XY>")["Pn"] == "XY"


def test_grbl_reads_its_answer_not_the_oldest_buffered_report() -> None:
    """GRBL answers ``?`` at once with one report (``gnea/grbl`` ``grbl/report.c``
    ``report_realtime_status``); FluidNC also sends reports unasked whenever the state changes
    and every ``$Report/Interval`` ms while moving (``FluidNC/src/Channel.cpp`` ``autoReport``).
    Reports buffered before the ``?`` are stale, but the accessories they carried still count."""
    board = GrblBoard()
    board.reports = ["<Run|MPos:1,0,0|FS:500,0>"]
    with PtyMachine(board, realtime=b"?") as pty:
        laser = Grbl("laser-1", port=pty.path)
        assert laser.poll().state == "idle"
        pty.send(b"<Idle|MPos:0,0,0|FS:0,0>\r\n<Run|MPos:1,0,0|FS:500,0|Ov:100,100,100|A:S>\r\n")
        time.sleep(0.2)
        assert laser.poll().state == "busy"  # laser on (A:S) from the auto-report, Run from the answer
        laser.close()

