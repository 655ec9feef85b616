"""What the board says decides how a print ended, and a run of a file is one job.

Dialects and the sources their answers are written from: ``tests/agent/marlin_board.py``.
Unsolicited lines: Marlin 2.1 ``Marlin/src/core/language.h`` (``STR_FILE_PRINTED`` "Done
printing file", ``STR_ERR_KILLED`` "Printer halted. kill() called!"), ``MarlinCore.cpp``
(``start`` on boot), ``feature/host_actions.cpp`` (``//action:pause`` …); Klipper
``klippy/gcode.py`` (``!!`` errors, ``// Klipper state: Shutdown``).
"""

from __future__ import annotations

import time

import pytest

from agent.machines.marlin import Marlin
from agent.snapshot import MachineSnapshot
from tests.agent.fake_serial import PtyMachine
from tests.agent.marlin_board import Board


class Memory(dict[str, str]):
    """The outbox's meta table, as far as a driver uses it."""

    def put(self, key: str, value: str) -> None:
        self[key] = value


def printing(board: Board, pty: PtyMachine, printer: Marlin, at: int = 300) -> MachineSnapshot:
    board.start("benchy.gcode", 1000)
    board.advance(at)
    snap = printer.poll()
    assert snap.state == "printing" and snap.job is not None and snap.job.outcome is None
    return snap


def said(pty: PtyMachine, text: str) -> None:
    pty.send(text.encode() + b"\n")
    time.sleep(0.15)


def test_done_printing_file_completes_the_job() -> None:
    board = Board()
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path)
        snap = printing(board, pty, printer, at=400)
        assert snap.job is not None and snap.job.name == "benchy.gcode"
        board.stop()
        said(pty, "Done printing file")
        done = printer.poll()
        assert done.state == "idle" and done.job is not None
        assert (done.job.outcome, done.job.progress) == ("completed", 100.0)
        printer.close()


def test_a_print_stopped_at_the_printer_is_cancelled_not_completed() -> None:
    board = Board()
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path)
        printing(board, pty, printer, at=999)
        board.stop()
        done = printer.poll()
        assert done.job is not None and done.job.outcome == "cancelled"
        printer.close()


@pytest.mark.parametrize(
    "lines",
    [
        ["Error:Thermal Runaway, system stopped! Heater_ID: 0", "Error:Printer halted. kill() called!"],
        ["Error:MINTEMP triggered, system stopped! Heater_ID: bed"],
        ["!! MCU 'mcu' shutdown: Timer too close", "// Klipper state: Shutdown"],
    ],
)
def test_a_halted_board_is_in_error_and_its_print_failed(lines: list[str]) -> None:
    board = Board()
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path, answer_s=0.5)
        printing(board, pty, printer)
        said(pty, "\n".join(lines))
        board.instead["M105"] = [5.0]  # a halted Marlin answers nothing more
        halted = printer.poll()
        assert halted.state == "error" and halted.job is not None
        assert halted.job.outcome == "failed"
        assert printer.poll().state == "error"  # until the board restarts
        said(pty, "start")
        assert printer.poll().state == "idle"
        printer.close()


def test_a_line_error_is_not_a_halt() -> None:
    """``Error:Line Number is not Last Line Number+1`` asks the host to resend: the printer is fine."""
    board = Board()
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path)
        printing(board, pty, printer)
        said(pty, "Error:Line Number is not Last Line Number+1, Last Line: 7\nResend: 8")
        assert printer.poll().state == "printing"
        printer.close()


def test_a_reset_mid_print_ends_the_job_as_failed() -> None:
    board = Board()
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path)
        printing(board, pty, printer)
        board.stop()
        said(pty, "start\necho:Marlin 2.1.2.1\necho: Last Updated: 2023-05-18 | Author: (none, default config)")
        snap = printer.poll()
        assert snap.state == "idle" and snap.job is not None and snap.job.outcome == "failed"
        printer.close()


@pytest.mark.parametrize("dialect", ["marlin", "prusa-mk3"])
def test_a_paused_print_is_paused_and_resumes_as_the_same_job(dialect: str) -> None:
    """Marlin 2.1 answers ``Not SD printing`` while paused (the file stays open: ``M27 C`` names
    it); Prusa MK3 answers ``SD print paused``. Neither ends the job."""
    board = Board(dialect)
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path)
        before = printing(board, pty, printer)
        board.paused = True
        paused = printer.poll()
        assert paused.state == "paused" and paused.job is not None and paused.job.outcome is None
        board.paused = False
        board.advance(600)
        resumed = printer.poll()
        assert resumed.state == "printing" and resumed.job is not None and before.job is not None
        assert (resumed.job.key, resumed.job.progress) == (before.job.key, 60.0)
        printer.close()


def test_host_action_pause_is_paused() -> None:
    board = Board("klipper")  # Klipper keeps answering "SD printing byte" while paused
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path)
        printing(board, pty, printer)
        said(pty, "// action:paused")
        assert printer.poll().state == "paused"
        said(pty, "// action:resumed")
        assert printer.poll().state == "printing"
        printer.close()


def test_a_corrupted_byte_does_not_end_the_job() -> None:
    board = Board()
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path)
        before = printing(board, pty, printer)
        board.instead["M27"] = [b"SD pr\xefnting byte 3\xff0/1000\n", "ok"]
        garbled = printer.poll()
        assert garbled.state == "printing" and garbled.job is not None and before.job is not None
        assert (garbled.job.key, garbled.job.outcome) == (before.job.key, None)
        printer.close()


def test_an_agent_restart_mid_print_continues_the_same_job() -> None:
    board, memory = Board(), Memory()
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path, memory=memory)
        before = printing(board, pty, printer)
        printer.close()
        board.advance(500)
        again = Marlin("printer-3", port=pty.path, memory=memory).poll()
        assert again.state == "printing" and again.job is not None and before.job is not None
        assert (again.job.key, again.job.progress) == (before.job.key, 50.0)


def test_the_same_file_printed_twice_is_two_jobs() -> None:
    board, clock = Board(), iter(range(1_700_000_000, 1_800_000_000, 60))
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path, wall=lambda: float(next(clock)))
        first = printing(board, pty, printer, at=900)
        board.stop()
        said(pty, "Done printing file")
        assert printer.poll().job.outcome == "completed"  # type: ignore[union-attr]
        second = printing(board, pty, printer, at=100)
        assert first.job is not None and second.job is not None and first.job.key != second.job.key
        printer.close()
