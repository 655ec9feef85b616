"""A GRBL controller (laser cutter, CNC) on a serial port, read through the ``?`` status report.

    laser = Grbl("laser-1", port="/dev/ttyACM0")
    laser.poll()       # MachineSnapshot(state='busy') while in Run with the laser or spindle on

Hold, Door and Alarm are not running. GRBL 1.1 reports the ``A:`` (accessories) field only now
and then, with the overrides (``Ov:``): its value is latched until the next report that would
carry it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.errors import MachineUnreachable
from agent.machines.serialport import LineStream, SerialLink
from agent.snapshot import MachineSnapshot

# the welcome line after a reset: GRBL 0.9/1.1 "Grbl 1.1h ['$' for help]", grblHAL "GrblHAL 1.1f …",
# FluidNC "Grbl 3.7 [FluidNC v3.7.8 (wifi) '$' for help]"
BANNERS = ("Grbl ", "GrblHAL ")


class Grbl:
    """A GRBL machine (0.9, 1.1, grblHAL, FluidNC): busy while running with the spindle or laser on.

        laser = Grbl("laser-1", port="/dev/ttyACM0")
        laser.poll().state      # 'busy' / 'idle' / 'error' (alarm)
    """

    def __init__(
        self, machine: str, *, port: str, baudrate: int = 115200, answer_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.machine = machine
        self.url = port
        self._link = SerialLink(port, baudrate, clock=clock)
        self._stream = LineStream(self._link, clock=clock)
        self._answer_s, self._clock = answer_s, clock
        self._accessories = ""
        self._alarm: str | None = None
        self.resets = 0

    def poll(self) -> MachineSnapshot:
        until = self._clock() + self._answer_s
        for line in self._stream.pending():  # stale reports (FluidNC auto-reports), alarms, banners
            self._hear(line)
        self._stream.send(b"?")
        report = self._report(until)
        fields = parse_report(report)
        state = fields["state"].split(":")[0]
        if state == "Alarm" or self._alarm:
            return MachineSnapshot(self.machine, "error", detail=self._alarm or report)
        if "|" not in report:  # GRBL 0.9 says nothing of the spindle: Run is a job running
            return MachineSnapshot(self.machine, "busy" if state == "Run" else "idle", detail=state)
        on = spindle_speed(fields) > 0 or any(c in self._accessories for c in "SC")
        return MachineSnapshot(self.machine, "busy" if state == "Run" and on else "idle", detail=state)

    def _report(self, until: float) -> str:
        """The first status report read after the ``?`` (an auto-report then is as fresh)."""
        while (line := self._stream.line(until=until)) is not None:
            if self._hear(line):
                return line
        raise MachineUnreachable(f"no status report from GRBL on {self.url} within {self._answer_s} s")

    def _hear(self, line: str) -> bool:
        """Take in one line; whether it was a status report."""
        if line.startswith("<") and line.endswith(">"):
            fields = parse_report(line)
            if "Ov" in fields or "A" in fields:  # a report that carries accessories says them all
                self._accessories = fields.get("A", "")
            if not fields["state"].startswith("Alarm"):
                self._alarm = None
            return True
        if line.startswith("ALARM:"):
            self._alarm = line
        elif line.startswith(BANNERS):
            self.resets += 1
            self._accessories = ""
        return False

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
