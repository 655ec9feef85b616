"""A Marlin printer on a serial port: ``M105`` temperatures, ``M27`` SD progress, ``M31`` print time,
``M78`` filament counter (when the firmware has print statistics).

    printer = Marlin("printer-3", port="/dev/ttyUSB0")
    printer.poll()     # MachineSnapshot(state='printing', job=JobView('SD print', progress=37.5, ...))

The port is opened once, lazily, and kept: opening it resets most boards. Only SD prints are
seen as jobs (a print streamed by a host is that host's to report, e.g. OctoPrint).
"""

from __future__ import annotations

import re
import time

from agent.errors import MachineUnreachable
from agent.machines.serialport import SerialLink, read_line, write
from agent.snapshot import JobView, MachineSnapshot

TEMPERATURE = re.compile(r"(?<![A-Za-z@])(T\d?|B|C)\s*:\s*(-?\d+(?:\.\d+)?)")
SD_PROGRESS = re.compile(r"SD printing byte (\d+)\s*/\s*(\d+)")
DURATION = re.compile(r"(\d+)\s*([dhms])\b")
FILAMENT = re.compile(r"Filament used:\s*([\d.]+)\s*(m|mm)\b")
SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
NAMES = {"T": "tool0", "B": "bed", "C": "chamber"}


class Marlin:
    """A Marlin board read over its serial console, tolerant of ``busy:`` lines and noise."""

    def __init__(self, machine: str, *, port: str, baudrate: int = 115200, answer_s: float = 3.0) -> None:
        self.machine = machine
        self.url = port
        self._link = SerialLink(port, baudrate)
        self._answer_s = answer_s
        self._job: JobView | None = None
        self._jobs = 0
        self._counter_at_start: float | None = None
        self._has_m78 = True

    def poll(self) -> MachineSnapshot:
        temperatures = temperatures_in(self._ask("M105"))
        sd = sd_progress(self._ask("M27"))
        if sd is not None:
            self._follow(sd)
        elif self._job is not None and self._job.outcome is None:
            self._finish()
        state = "printing" if self._job and self._job.outcome is None else "idle"
        return MachineSnapshot(self.machine, state, job=self._job, temperatures=temperatures)

    def _follow(self, sd: tuple[int, int]) -> None:
        done, size = sd
        if self._job is None or self._job.outcome is not None:
            self._jobs += 1
            self._counter_at_start = self._filament_counter()
            self._job = JobView("SD print", key=f"sd:{size}:{self._jobs}")
        progress = round(100.0 * done / size, 2) if size else None
        elapsed = print_seconds(self._ask("M31"))
        self._job = JobView(self._job.name, self._job.key, progress=progress, elapsed_s=elapsed,
                            filament_mm=self._used())  # fmt: skip

    def _finish(self) -> None:
        assert self._job is not None
        outcome = "completed" if (self._job.progress or 0) >= 99.9 else "cancelled"
        self._job = JobView(self._job.name, self._job.key, progress=self._job.progress,
                            elapsed_s=self._job.elapsed_s, filament_mm=self._used(), outcome=outcome)  # fmt: skip

    def _used(self) -> float | None:
        now = self._filament_counter()
        if now is None or self._counter_at_start is None:
            return None
        return max(now - self._counter_at_start, 0.0)

    def _filament_counter(self) -> float | None:
        if not self._has_m78:
            return None
        lines = self._ask("M78")
        used = filament_counter(lines)
        if used is None and any("Unknown command" in line for line in lines):
            self._has_m78 = False  # firmware built without print statistics
        return used

    def _ask(self, command: str) -> list[str]:
        """Send one command; the lines up to its ``ok``. ``busy:`` lines extend the wait."""
        port = self._link.port()
        write(port, self.url, f"{command}\n".encode())
        lines: list[str] = []
        deadline = time.monotonic() + self._answer_s
        while time.monotonic() < deadline:
            line = read_line(port, self.url)
            if "busy:" in line:
                deadline = time.monotonic() + self._answer_s
            elif line.startswith("ok"):
                return lines + [line[2:].strip()]
            elif line:
                lines.append(line)
        raise MachineUnreachable(f"no 'ok' from the Marlin board on {self.url} to {command} within {self._answer_s} s")

    def close(self) -> None:
        self._link.close()


def temperatures_in(lines: list[str]) -> dict[str, float]:
    """``ok T:210.0 /210.0 B:60.1 /60.0 @:127`` and variants (``T0:``, ``T1:``, no spaces)."""
    found: dict[str, float] = {}
    for line in lines:
        for name, value in TEMPERATURE.findall(line):
            key = NAMES.get(name, f"tool{name[1:]}" if name.startswith("T") else name)
            found.setdefault(key, float(value))
    return found


def sd_progress(lines: list[str]) -> tuple[int, int] | None:
    for line in lines:
        match = SD_PROGRESS.search(line)
        if match:
            return int(match[1]), int(match[2])
    return None


def print_seconds(lines: list[str]) -> int | None:
    """``echo:Print time: 1h 2m 3s`` (or ``echo:0d 1h 2m 3s``)."""
    for line in lines:
        parts = DURATION.findall(line)
        if parts and ("time" in line.lower() or line.startswith("echo:")):
            return sum(int(n) * SECONDS[unit] for n, unit in parts)
    return None


def filament_counter(lines: list[str]) -> float | None:
    """The lifetime counter of ``M78`` in mm (``Filament used: 12.34m``)."""
    for line in lines:
        match = FILAMENT.search(line)
        if match:
            return float(match[1]) * (1000.0 if match[2] == "m" else 1.0)
    return None
