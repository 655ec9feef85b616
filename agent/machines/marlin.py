"""A Marlin printer (also Prusa MK3 and Klipper's serial console) read over its serial port.

    printer = Marlin("printer-3", port="/dev/ttyUSB0", memory=outbox)
    printer.poll()     # MachineSnapshot(state='printing', job=JobView('BENCHY.GCO', progress=37.5, ...))

Each poll asks ``M105`` (temperatures), ``M27`` (SD progress), and while a file prints ``M31``
(print time) and ``M78`` (filament counter, when the firmware keeps statistics), all within one
deadline that nothing extends. What the board says on its own is understood: ``busy:`` (alive,
blocked on a heat-up or a filament change), ``//action:`` (host actions: pause, resume,
cancel), ``Done printing file`` (the print completed), ``Error:``/``kill()``/``!!`` (halted),
``start`` (the board restarted). Only SD prints are jobs: a print a host streams is that
host's to report (e.g. OctoPrint).

A run of a file is keyed by its name, size and the wall time it was first seen; the key is
kept in ``memory`` (the outbox) so that an agent restarted mid-print goes on with the same job.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from agent.errors import MachineUnreachable
from agent.machines.console import Console
from agent.machines.memory import Memory
from agent.machines.serialport import LineStream, SerialLink
from agent.snapshot import JobView, MachineSnapshot

TEMPERATURE = re.compile(r"(?<![A-Za-z@])(T\d?|B|C)\s*:\s*(-?\d+(?:\.\d+)?)")
SD_PROGRESS = re.compile(r"SD printing byte (\d+)\s*/\s*(\d+)\s*$")
DURATION = re.compile(r"(\d+)\s*([dhms])\b")
FILAMENT = re.compile(r"Filament used:\s*([\d.]+)\s*(m|mm)\b")
SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
NAMES = {"T": "tool0", "B": "bed", "C": "chamber"}
# Prusa MK3 (Firmware/cardreader.cpp getStatus): while a print is paused or saved
PAUSED_LINES = ("SD print paused", "Print saved")
# Marlin's communication errors: the host resends a line, the printer is fine
LINE_ERRORS = ("Line Number", "checksum", "Checksum", "No Line Number", "Format error")


@dataclass(frozen=True)
class Run:
    """One run of an SD file, as persisted: its key, and how far it was last seen."""

    key: str
    name: str
    size: int
    position: int = 0
    counter_mm: float | None = None  # the M78 filament counter when the run began
    restored: bool = False  # read back after an agent restart: its end may have gone unheard


@dataclass
class Heard:
    """What the board said on its own since the last poll."""

    busy: str | None = None  # 'processing', 'paused for user', 'paused for input'
    done: bool = False  # ``Done printing file``
    reset: bool = False  # the ``start`` banner of a board that restarted
    action: str | None = None  # the last ``//action:`` pause/paused/resume/resumed/cancel
    halted: str | None = None  # why the board halted (kept until it restarts or says it is ready)


class Marlin:
    """A Marlin-speaking board: one deadline per poll, answers matched to their command."""

    def __init__(
        self, machine: str, *, port: str, baudrate: int = 115200, answer_s: float = 3.0,
        memory: Memory | None = None, clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.machine = machine
        self.url = port
        self._link = SerialLink(port, baudrate, clock=clock)
        self._console = Console(LineStream(self._link, clock=clock), hear=self._hear)
        self._answer_s, self._clock, self._wall = answer_s, clock, wall
        self._memory = memory
        self._heard = Heard()
        self._halted: str | None = None
        self._temperatures: dict[str, float] = {}
        self._job: JobView | None = None
        self._paused = False
        self._run = self._restore()
        self._has_m78 = True

    # -- one poll ----------------------------------------------------------------------------

    def poll(self) -> MachineSnapshot:
        until = self._clock() + self._answer_s
        self._heard = Heard(halted=self._halted)
        answered = False
        if self._halted:  # a halted board answers nothing until it restarts: only listen
            for line in self._console.stream.pending():
                self._hear(line)
        else:
            answered = self._ask_all(until)
        if self._heard.reset:
            self._board_restarted()
        self._halted = self._heard.halted
        if self._halted:
            return self._halt()
        if not answered and self._heard.busy is None and not self._heard.reset:
            raise MachineUnreachable(f"no 'ok' from the Marlin board on {self.url} within {self._answer_s} s")
        return self._snapshot()

    def _ask_all(self, until: float) -> bool:
        """Ask this poll's questions; False when the board did not answer them all in time."""
        m105 = self._console.ask("M105", until=until)
        if m105 is None or self._heard.reset:
            return False
        self._temperatures = temperatures_in(m105) or self._temperatures
        m27 = self._console.ask("M27", until=until)
        if m27 is None or self._heard.reset:
            return False
        m27c = self._which_file(m27, until)
        if m27c is not None:  # without it, a stopped M27 cannot tell a pause from an end: wait
            self._understand(m27, m27c, until)
        return True

    def _which_file(self, m27: list[str], until: float) -> list[str] | None:
        """``M27 C`` (which file is open) when a run starts or M27 stops saying it prints."""
        sd, run = sd_progress(m27), self._run
        if sd is not None and run is not None and sd[1] == run.size and sd[0] >= run.position:
            return []
        if (sd is None and run is None) or self._heard.done:
            return []
        return self._console.ask("M27 C", until=until)

    def _understand(self, m27: list[str], m27c: list[str], until: float) -> None:
        sd = sd_progress(m27)
        if sd is not None:
            self._printing(sd, file_name(m27, m27c), until=until)
        elif any(line.startswith(PAUSED_LINES) for line in m27):
            self._paused = self._run is not None
        elif any(line.startswith("Not SD printing") for line in m27):
            self._not_printing(m27c)
        # anything else (a corrupted byte, an unknown answer) changes nothing

    def _printing(self, sd: tuple[int, int], name: str | None, *, until: float) -> None:
        position, size = sd
        run = self._run
        if run is not None and (size != run.size or position < run.position or (name and name != run.name)):
            self._end(self._outcome_unheard())  # the same file started again, or another one
            run = None
        if run is None:
            label = name or "SD print"
            run = Run(f"sd:{label}:{size}@{int(self._wall())}", label, size, counter_mm=self._filament_counter(until))
            self._job = JobView(label, run.key)
        heard, moved = self._heard, position > run.position
        if heard.action in ("pause", "paused") or (heard.busy or "").startswith("paused"):
            self._paused = True
        elif heard.action in ("resume", "resumed") or moved:
            self._paused = False
        self._run = replace(run, position=position, restored=False)
        self._save()
        elapsed = print_seconds(self._console.ask("M31", until=until) or [])
        assert self._job is not None
        self._job = replace(self._job, progress=round(100.0 * position / size, 2) if size else None,
                            elapsed_s=elapsed, filament_mm=self._used(until), outcome=None)  # fmt: skip

    def _not_printing(self, m27c: list[str]) -> None:
        if self._run is None:
            return
        if self._heard.done:
            self._end("completed")
        elif self._heard.action == "cancel":
            self._end("cancelled")
        elif any(line.startswith("Current file:") and "(no file)" not in line for line in m27c):
            self._paused = True  # Marlin 2.x: a paused SD print keeps its file open (M27 C names it)
        else:
            self._end(self._outcome_unheard())

    def _outcome_unheard(self) -> str:
        """How a run ended that stopped without ``Done printing file``: stopped at the printer —
        unless the agent was not listening at its end (restarted), then its last progress says."""
        if self._run and self._run.restored and self._job and (self._job.progress or 0) >= 99.9:
            return "completed"
        return "cancelled"

    # -- what the board says -----------------------------------------------------------------

    def _hear(self, line: str) -> None:
        heard = self._heard
        kind, text = classify(line)
        if kind == "busy":
            heard.busy = text
        elif kind == "done":
            heard.done = True
        elif kind == "action":
            heard.action = text
        elif kind == "halt":
            heard.halted = heard.halted or text
        elif kind == "ready":
            heard.halted = None
        elif kind == "reset":
            heard.reset, heard.halted = True, None
            self._console.reset()
        if kind == "temperatures":
            self._temperatures = temperatures_in([line]) or self._temperatures
        if kind == "done" and self._run is not None:
            self._end("completed")

    def _board_restarted(self) -> None:
        """A reset mid-print ends the print: the board forgot it."""
        if self._run is not None:
            self._end("failed")

    def _halt(self) -> MachineSnapshot:
        if self._run is not None:
            self._end("failed")
        return MachineSnapshot(self.machine, "error", job=self._job, temperatures=self._temperatures,
                               detail=self._halted)  # fmt: skip

    def _snapshot(self) -> MachineSnapshot:
        running = self._run is not None
        state = ("paused" if self._paused else "printing") if running else "idle"
        detail = f"busy: {self._heard.busy}" if self._heard.busy else None
        if running and (self._heard.busy or "").startswith("paused"):
            state = "paused"  # a filament change (M600) or a pause waiting for the user
        return MachineSnapshot(self.machine, state, job=self._job, temperatures=self._temperatures, detail=detail)

    # -- the run's life ----------------------------------------------------------------------

    def _end(self, outcome: str) -> None:
        if self._job is not None and self._job.outcome is None:
            self._job = replace(self._job, outcome=outcome,
                                progress=100.0 if outcome == "completed" else self._job.progress)  # fmt: skip
        self._run, self._paused = None, False
        self._save()

    def _restore(self) -> Run | None:
        text = self._memory.get(self._memory_key) if self._memory else None
        if not text:
            return None
        run = Run(**json.loads(text), restored=True)
        self._job = JobView(run.name, run.key, progress=round(100.0 * run.position / run.size, 2) if run.size else None)
        return run

    def _save(self) -> None:
        if self._memory is None:
            return
        run, text = self._run, ""
        if run is not None:
            fields = {"key": run.key, "name": run.name, "size": run.size, "position": run.position,
                      "counter_mm": run.counter_mm}  # fmt: skip
            text = json.dumps(fields)
        self._memory.put(self._memory_key, text)

    @property
    def _memory_key(self) -> str:
        return f"marlin_run:{self.machine}"

    def _used(self, until: float) -> float | None:
        now = self._filament_counter(until)
        start = self._run.counter_mm if self._run else None
        if now is None or start is None:
            return None
        return max(now - start, 0.0)

    def _filament_counter(self, until: float) -> float | None:
        if not self._has_m78:
            return None
        lines = self._console.ask("M78", until=until) or []
        used = filament_counter(lines)
        if used is None and any("Unknown command" in line for line in lines):
            self._has_m78 = False  # firmware built without print statistics
        return used

    def close(self) -> None:
        self._link.close()


def classify(line: str) -> tuple[str, str]:
    """What one line from the board means, whoever asked: (kind, detail).

    Marlin 2.1 ``language.h``: ``echo:busy: processing`` / ``paused for user`` / ``paused for
    input`` (host keepalive), ``Done printing file`` (STR_FILE_PRINTED), ``Error:Printer halted.
    kill() called!`` (STR_ERR_KILLED); ``//action:`` host actions; ``start`` after a reset.
    Klipper (klippy/gcode.py): ``!! <error>``, ``// Klipper state: Shutdown`` / ``Ready``.
    """
    body = line.removeprefix("echo:").strip()
    if body.startswith("busy:"):
        return "busy", body[5:].strip()
    if body.startswith("Done printing file"):
        return "done", body
    if line.startswith("//action:") or line.startswith("// action:"):
        return "action", line.split(":", 1)[1].strip().split(" ")[0]
    if line == "start":
        return "reset", line
    if line.startswith("// Klipper state:"):
        return ("ready" if line.endswith("Ready") else "halt"), line[3:]
    if line.startswith("!!") or "kill() called" in line:
        return "halt", line.lstrip("! ").strip()
    if line.startswith("Error:") and not any(word in line for word in LINE_ERRORS):
        return "halt", line[6:].strip()
    if line.startswith("ok"):
        return "ok", line
    if TEMPERATURE.match(line):
        return "temperatures", line  # an auto-report (M155)
    return "other", line


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


def file_name(m27: list[str], m27c: list[str]) -> str | None:
    """``Current file: BENCHY~1.GCO benchy.gcode`` (Marlin M27 C), or the line Prusa MK3 prints
    above ``SD printing byte`` (its long file name)."""
    for line in m27c:
        if line.startswith("Current file:") and "(no file)" not in line:
            return line.split(":", 1)[1].strip().split(" ")[-1][:200] or None
    for before, line in zip(m27, m27[1:], strict=False):
        if SD_PROGRESS.search(line) and not before.startswith(("echo:", "//")):
            return before.strip()[:200] or None
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
