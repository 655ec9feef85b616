"""The serial drivers read the stream a board sends: lines across reads, one deadline per poll,
answers matched to their command, stale input dropped, a failed port reopened with back-off.

The board is a pseudo-terminal speaking Marlin 2.1 (see ``tests/agent/marlin_board.py`` for the
sources each answer is written from). Marlin's host keepalive (``Marlin/src/gcode/gcode.cpp``
``host_keepalive``) prints ``echo:busy: processing`` every ``M113`` seconds (2 s by default)
while a command blocks, e.g. ``M109`` heating, and answers queued commands only after it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent.errors import MachineUnreachable
from agent.machines.marlin import Marlin
from tests.agent.fake_serial import PtyMachine
from tests.agent.marlin_board import Board


def test_a_line_split_across_two_reads_is_one_line() -> None:
    board = Board()
    board.instead["M105"] = [b"ok T:21", 0.15, b"0.5 /210.0 B:6", 0.15, b"0.0 /60.0\n"]
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path)
        assert printer.poll().temperatures == {"tool0": 210.5, "bed": 60.0}
        printer.close()


def test_busy_lines_do_not_move_the_poll_deadline() -> None:
    """A heat-up of 12 s: busy every 0.4 s. The poll returns when its own deadline passes,
    far below systemd's 30 s watchdog, and the board is alive (busy), not unreachable."""
    board = Board()
    board.start("benchy.gcode", 1000)
    board.advance(100)
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path, answer_s=1.5)
        first = printer.poll()
        board.late["M105"] = [x for _ in range(30) for x in ("echo:busy: processing", 0.4)]
        started = time.monotonic()
        blocked = printer.poll()
        took = time.monotonic() - started
        assert took < 2.0
        assert (blocked.state, blocked.detail) == ("printing", "busy: processing")
        assert blocked.job is not None and first.job is not None and blocked.job.key == first.job.key
        printer.close()


def test_a_late_answer_is_matched_to_its_own_command() -> None:
    """M105 answered 1.5 s late: the next poll first takes that answer as M105's, then reads M27's
    own answer — not the previous command's, for good."""
    board = Board()
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path, answer_s=0.8)
        board.late["M105"] = [1.5]
        with pytest.raises(MachineUnreachable, match="no 'ok'"):
            printer.poll()
        board.start("benchy.gcode", 1000)
        board.advance(500)
        time.sleep(1.0)
        snap = printer.poll()
        assert snap.state == "printing" and snap.job is not None and snap.job.progress == 50.0
        board.advance(600)
        again = printer.poll()
        assert again.job is not None and again.job.progress == 60.0
        assert pty.commands.count("M105") == 3
        printer.close()


def test_stale_input_is_dropped_before_a_command() -> None:
    """Lines left over in the port (a stray ``ok``, an old progress line) are not the answer."""
    board = Board()
    with PtyMachine(board) as pty:
        printer = Marlin("printer-3", port=pty.path)
        printer.poll()
        pty.send(b"ok\nSD printing byte 5/10\nok T:99.0 /0.0 B:20.0 /0.0\n")
        time.sleep(0.2)
        snap = printer.poll()
        assert (snap.state, snap.job) == ("idle", None)
        assert snap.temperatures == {"tool0": 214.8, "bed": 60.1}
        printer.close()


def test_a_failed_port_is_reopened_after_a_back_off(tmp_path: Path) -> None:
    """USB pulled and plugged back: the device disappears and comes back (here a symlink to one
    pseudo-terminal, then to another)."""
    link = tmp_path / "ttyUSB0"
    with PtyMachine(Board()) as first:
        link.symlink_to(first.path)
        printer = Marlin("printer-3", port=str(link))
        assert printer.poll().state == "idle"
    link.unlink()
    with pytest.raises(MachineUnreachable, match="failed"):
        printer.poll()
    with pytest.raises(MachineUnreachable, match="next try in"):
        printer.poll()  # no reopening in a loop: opening resets most boards
    with PtyMachine(Board()) as second:
        os.symlink(second.path, link)
        time.sleep(1.1)
        assert printer.poll().state == "idle"
        printer.close()
