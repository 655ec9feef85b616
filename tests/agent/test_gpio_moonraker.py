"""The current-sensor driver with gpiozero's MockFactory, and the Moonraker driver over loopback HTTP."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from agent.errors import MachineUnreachable
from agent.machines.gpio import CurrentSense
from agent.machines.moonraker import QUERY, Moonraker
from tests.agent.fake_octoprint import FakeOctoPrint


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.reset()


def test_busy_once_current_lasted_the_minimum_burst(mock_factory: MockFactory) -> None:
    clock = Clock()
    sewing = CurrentSense("sewing-1", pin=17, on_s=1, off_s=5, pin_factory=mock_factory, clock=clock)
    mock_factory.pin(17).drive_high()
    assert sewing.poll().state == "idle"
    clock.advance(1.1)
    assert sewing.poll().state == "busy"
    mock_factory.pin(17).drive_low()
    clock.advance(4)
    assert sewing.poll().state == "busy"  # a pause shorter than off_s
    clock.advance(1.5)
    assert sewing.poll().state == "idle"


def drive(mock_factory: MockFactory, clock: Clock, pattern: list[tuple[bool, float]]) -> None:
    """Drive pin 17 through ``(level, seconds)`` steps between two polls, on the test clock."""
    pin = mock_factory.pin(17)
    for high, seconds in pattern:
        pin.drive_high() if high else pin.drive_low()
        clock.advance(seconds)


def test_random_flicker_on_an_idle_machine_is_never_busy(mock_factory: MockFactory) -> None:
    """Flicker (pulses of 20-400 ms at random gaps) seen by polls every 2 s: sampling alone read
    a machine busy whenever two polls fell on a high; the recorded edges say none lasted."""
    clock, rng = Clock(), random.Random(14)
    sewing = CurrentSense("sewing-1", pin=17, on_s=1, off_s=5, pin_factory=mock_factory, clock=clock)
    states = []
    for _ in range(300):
        drive(mock_factory, clock, [(True, rng.uniform(0.02, 0.4)), (False, rng.uniform(0.05, 1.5))])
        if rng.random() < 0.5:
            mock_factory.pin(17).drive_high()  # a poll that lands on a pulse
        states.append(sewing.poll().state)
        mock_factory.pin(17).drive_low()
    assert set(states) == {"idle"}


def test_a_two_second_burst_between_two_polls_counts(mock_factory: MockFactory) -> None:
    clock = Clock()
    sewing = CurrentSense("sewing-1", pin=17, on_s=1, off_s=5, pin_factory=mock_factory, clock=clock)
    assert sewing.poll().state == "idle"
    drive(mock_factory, clock, [(False, 1), (True, 2), (False, 1)])
    assert sewing.poll().state == "busy"
    clock.advance(6)
    assert sewing.poll().state == "idle"


def test_a_pulsing_output_is_stretched_into_one_steady_activity(mock_factory: MockFactory) -> None:
    """An AC comparator without smoothing: 10 ms high every 20 ms (50 Hz) while the motor runs."""
    clock = Clock()
    sewing = CurrentSense("sewing-1", pin=17, on_s=1, off_s=2, stretch_s=0.1, pin_factory=mock_factory, clock=clock)
    drive(mock_factory, clock, [(True, 0.01), (False, 0.01)] * 100)  # 2 s of mains pulses
    assert sewing.poll().state == "busy"
    drive(mock_factory, clock, [(True, 0.01), (False, 0.01)] * 100)
    assert sewing.poll().state == "busy"
    clock.advance(3)
    assert sewing.poll().state == "idle"


def test_without_stretch_the_pulses_never_make_a_burst(mock_factory: MockFactory) -> None:
    clock = Clock()
    sewing = CurrentSense("sewing-1", pin=17, on_s=1, off_s=2, pin_factory=mock_factory, clock=clock)
    drive(mock_factory, clock, [(True, 0.01), (False, 0.01)] * 100)
    assert sewing.poll().state == "idle"


def moonraker_status(state: str, filename: str = "part.gcode", used: float = 812.4, progress: float = 0.37) -> bytes:
    status = {
        "print_stats": {"state": state, "filename": filename, "print_duration": 1234.5, "filament_used": used},
        "virtual_sdcard": {"progress": progress},
        "extruder": {"temperature": 210.2, "target": 210},
        "heater_bed": {"temperature": 60.0, "target": 60},
        "webhooks": {"state": "ready"},
    }
    return json.dumps({"result": {"eventtime": 1.0, "status": status}}).encode()


@pytest.fixture
def klipper() -> Iterator[FakeOctoPrint]:
    with FakeOctoPrint(api_key="k") as fake:
        yield fake


@pytest.mark.parametrize(
    ("state", "expected", "outcome"),
    [("printing", "printing", None), ("paused", "paused", None), ("complete", "idle", "completed"),
     ("cancelled", "idle", "cancelled"), ("error", "error", "failed"), ("standby", "idle", None)],
)
def test_moonraker_print_stats(klipper: FakeOctoPrint, state: str, expected: str, outcome: str | None) -> None:
    klipper.routes = {QUERY.split("?")[0]: (200, moonraker_status(state))}
    snap = Moonraker("printer-2", url=klipper.url, api_key="k").poll()
    assert snap.state == expected and snap.job is not None
    assert (snap.job.outcome, snap.job.filament_mm, snap.job.progress) == (outcome, 812.4, 37.0)
    assert snap.temperatures == {"extruder": 210.2, "heater_bed": 60.0}


def test_moonraker_without_klippy_is_offline_and_garbage_is_unreachable(klipper: FakeOctoPrint) -> None:
    klipper.routes = {"/printer/objects/query": (503, b'{"error": {"message": "Klippy Disconnected"}}')}
    assert Moonraker("printer-2", url=klipper.url, api_key="k").poll().state == "offline"
    klipper.routes = {"/printer/objects/query": (200, b'{"result": ')}
    with pytest.raises(MachineUnreachable, match="cannot read Moonraker"):
        Moonraker("printer-2", url=klipper.url, api_key="k").poll()
