"""A machine that is busy while its current sensor's digital output is high (gpiozero).

    sewing = CurrentSense("sewing-1", pin="GPIO27", on_s=1.0, off_s=5.0)
    sewing.poll()      # MachineSnapshot(machine='sewing-1', state='idle')

Every edge of the input is recorded as it happens (gpiozero calls back from its own thread),
so what happened between two polls counts, not only what a poll happens to sample:

- ``stretch_s``: a sensor whose output pulses while current flows (an AC comparator, a
  hall-effect switch) reads as one steady high while pulses come less than this apart;
- ``on_s`` (the minimum burst): activity counts only once it has lasted this long — flicker
  on an idle machine never does — and a burst that long counts even when it began and ended
  between two polls (a sewing machine used in 2-second bursts);
- ``off_s``: the machine is idle once no activity was seen for this long (short pauses
  within a job stay busy).

The wiring this assumes is written beside the example configuration (``deploy/``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from gpiozero import DigitalInputDevice

from agent.snapshot import MachineSnapshot


class CurrentSense:
    """Busy/idle from one input pin, with separate on and off delays and a pulse stretch."""

    def __init__(
        self, machine: str, *, pin: Any, on_s: float = 1.0, off_s: float = 5.0, stretch_s: float = 0.0,
        pin_factory: Any = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.machine = machine
        self.on_s, self.off_s, self.stretch_s = on_s, off_s, stretch_s
        self._clock = clock
        self._lock = threading.Lock()
        self._edges: list[tuple[float, bool]] = []
        self._sense = DigitalInputDevice(pin, pull_up=False, pin_factory=pin_factory)
        self._high = bool(self._sense.value)
        self._burst_start: float | None = clock() if self._high else None
        self._last_active = clock() if self._high else float("-inf")
        self._busy = False
        self._sense.when_activated = lambda: self._edge(True)
        self._sense.when_deactivated = lambda: self._edge(False)

    def _edge(self, high: bool) -> None:
        with self._lock:
            self._edges.append((self._clock(), high))

    def poll(self) -> MachineSnapshot:
        now = self._clock()
        with self._lock:
            edges, self._edges = self._edges, []
        for at, high in edges:
            self._take(at, high)
        if self._high:
            self._last_active = now
        self._busy = self._decide(now)
        return MachineSnapshot(self.machine, "busy" if self._busy else "idle")

    def _take(self, at: float, high: bool) -> None:
        if high and not self._high and (self._burst_start is None or at - self._last_active > self.stretch_s):
            self._burst_start = at  # a new burst: the gap since the last one was longer than a pulse's
        if not high and self._high:
            self._last_active = at
        self._high = high

    def _decide(self, now: float) -> bool:
        quiet_s = now - self._last_active
        if self._busy:
            return quiet_s <= max(self.off_s, self.stretch_s)
        burst = self._burst_start is not None and self._last_active - self._burst_start >= self.on_s
        if burst and quiet_s <= max(self.off_s, self.stretch_s):
            return True
        if not self._high and quiet_s > self.stretch_s:
            self._burst_start = None  # flicker that never lasted: forgotten
        return False

    @property
    def pin(self) -> Any:
        """The gpiozero pin read (a MockPin in tests and demos)."""
        return self._sense.pin

    def close(self) -> None:
        self._sense.close()
