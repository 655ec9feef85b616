"""A mocked current sensor that runs on its own: busy for a while, idle for a while, again.

    CurrentCycle(sense.pin, busy_s=20, idle_s=40).start()   # sense.pin is a gpiozero MockPin

Used by ``simulate_busy_s``/``simulate_idle_s`` in an agent's configuration for the demo; the
real ``CurrentSense`` driver reads the pin, hold time and all.
"""

from __future__ import annotations

import threading
from typing import Any

from broker.settings import ConfigError


class CurrentCycle:
    def __init__(self, pin: Any, busy_s: float, idle_s: float) -> None:
        if not hasattr(pin, "drive_high"):
            raise ConfigError(
                "simulate_busy_s needs a mocked pin: run the agent with GPIOZERO_PIN_FACTORY=mock"
            )
        self._pin, self._busy_s, self._idle_s = pin, busy_s, idle_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="current-cycle", daemon=True)

    def start(self) -> CurrentCycle:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._idle_s):
            self._pin.drive_high()
            if self._stop.wait(self._busy_s):
                break
            self._pin.drive_low()

    def stop(self) -> None:
        self._stop.set()
