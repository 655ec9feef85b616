"""A GRBL controller (laser cutter, CNC) on a serial port, read through the ``?`` status report.

    laser = Grbl("laser-1", port="/dev/ttyACM0")
    laser.poll()       # MachineSnapshot(state='busy') while in Run with the laser or spindle on

Hold, Door and Alarm are not running. GRBL 1.1 reports the ``A:`` (accessories) field only now
and then, with the overrides (``Ov:``): its value is latched until the next report that would
carry it.
"""

from __future__ import annotations

import time

from agent.errors import MachineUnreachable
from agent.machines.serialport import SerialLink, read_line, write
from agent.snapshot import MachineSnapshot


class Grbl:
    """A GRBL machine: busy while running with the spindle or laser on."""

    def __init__(self, machine: str, *, port: str, baudrate: int = 115200, answer_s: float = 2.0) -> None:
        self.machine = machine
        self.url = port
        self._link = SerialLink(port, baudrate)
        self._answer_s = answer_s
        self._accessories = ""

    def poll(self) -> MachineSnapshot:
        report = self._status()
        fields = parse_report(report)
        if "Ov" in fields or "A" in fields:  # a report that carries accessories says them all
            self._accessories = fields.get("A", "")
        state = fields["state"].split(":")[0]
        spindle = spindle_speed(fields)
        on = spindle > 0 or any(c in self._accessories for c in "SC")
        if state == "Alarm":
            return MachineSnapshot(self.machine, "error", detail=report)
        return MachineSnapshot(self.machine, "busy" if state == "Run" and on else "idle", detail=state)

    def _status(self) -> str:
        port = self._link.port()
        write(port, self.url, b"?")
        deadline = time.monotonic() + self._answer_s
        while time.monotonic() < deadline:
            line = read_line(port, self.url)
            if line.startswith("<") and line.endswith(">"):
                return line
        raise MachineUnreachable(f"no status report from GRBL on {self.url} within {self._answer_s} s")

    def close(self) -> None:
        self._link.close()


def parse_report(report: str) -> dict[str, str]:
    """``<Run|MPos:1,2,3|FS:500,8000|A:S>`` (1.1) or ``<Run,MPos:1,2,3,WPos:…>`` (0.9)."""
    body = report.strip("<>")
    if "|" in body:
        state, *rest = body.split("|")
        fields = dict(part.split(":", 1) for part in rest if ":" in part)
    else:
        state, _, _rest = body.partition(",")
        fields = {}
    fields["state"] = state
    return fields


def spindle_speed(fields: dict[str, str]) -> float:
    try:
        return float(fields.get("FS", "0,0").split(",")[1])
    except (IndexError, ValueError):
        return 0.0
