"""A machine that is busy while its current sensor's digital output is high (gpiozero).

    sewing = CurrentSense("sewing-1", pin="GPIO27", hold_s=3)
    sewing.poll()      # MachineSnapshot(machine='sewing-1', state='idle')
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gpiozero import DigitalInputDevice

from agent.snapshot import MachineSnapshot


class CurrentSense:
    """Busy/idle from one input pin; a change counts only once it has lasted ``hold_s`` (chatter)."""

    def __init__(
        self, machine: str, *, pin: Any, hold_s: float = 3.0, pin_factory: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.machine = machine
        self.hold_s = hold_s
        self._clock = clock
        self._sense = DigitalInputDevice(pin, pull_up=False, pin_factory=pin_factory)
        self._stable = False
        self._raw = False
        self._since = clock()

    def poll(self) -> MachineSnapshot:
        raw, now = bool(self._sense.value), self._clock()
        if raw != self._raw:
            self._raw, self._since = raw, now
        if raw != self._stable and now - self._since >= self.hold_s:
            self._stable = raw
        return MachineSnapshot(self.machine, "busy" if self._stable else "idle")

    @property
    def pin(self) -> Any:
        """The gpiozero pin read (a MockPin in tests and demos)."""
        return self._sense.pin

    def close(self) -> None:
        self._sense.close()
