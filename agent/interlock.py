"""The relay that enables a machine, and the LED and buzzer that answer a badge or PIN (gpiozero).

    relay = Interlock("GPIO17")
    relay.energize()     # the machine may run
    relay.release()      # undriven pin, crash or boot: the relay drops and the machine is off

Wiring: the relay is energized only while the pin is driven high (``active_high=True``,
``initial_value=False``), so an undriven pin — at boot, after a crash — leaves the machine disabled.
"""

from __future__ import annotations

from typing import Any

from gpiozero import LED, Buzzer, OutputDevice


class Interlock:
    """A relay on an output pin; ``on`` means the machine is enabled."""

    def __init__(self, pin: Any, *, pin_factory: Any = None) -> None:
        self._relay = OutputDevice(pin, active_high=True, initial_value=False, pin_factory=pin_factory)

    @property
    def on(self) -> bool:
        return bool(self._relay.value)

    def energize(self) -> None:
        self._relay.on()

    def release(self) -> None:
        self._relay.off()

    def close(self) -> None:
        self._relay.close()


# (blinks, seconds each): what a person at the machine sees and hears
ACCEPTED = (1, 0.8)
REFUSED = (3, 0.15)
REFUSAL_PATTERNS = {
    "not_qualified": (2, 0.5),  # two long: "you need the training first"
    "out_of_service": (6, 0.08),  # a fast flutter: the machine itself is off
}


def refusal_pattern(code: str | None) -> tuple[int, float]:
    return REFUSAL_PATTERNS.get(code or "", REFUSED)


class Feedback:
    """An LED and a buzzer (either may be absent): one long blink for yes, three short for no,
    two long for "training required", a fast flutter for "out of service" (``REFUSAL_PATTERNS``).
    """

    def __init__(self, led_pin: Any = None, buzzer_pin: Any = None, *, pin_factory: Any = None) -> None:
        self._led = LED(led_pin, pin_factory=pin_factory) if led_pin else None
        self._buzzer = Buzzer(buzzer_pin, pin_factory=pin_factory) if buzzer_pin else None

    def accepted(self) -> None:
        self._signal(*ACCEPTED)

    def refused(self, code: str | None = None) -> None:
        self._signal(*refusal_pattern(code))

    def _signal(self, times: int, seconds: float) -> None:
        if self._led:
            self._led.blink(on_time=seconds, off_time=0.15, n=times)
        if self._buzzer:
            self._buzzer.beep(on_time=seconds / 2, off_time=0.15, n=times)

    def close(self) -> None:
        for device in (self._led, self._buzzer):
            if device:
                device.close()
