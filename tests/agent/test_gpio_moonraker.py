"""The current-sensor driver with gpiozero's MockFactory, and the Moonraker driver over loopback HTTP."""

from __future__ import annotations

import json
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


def test_busy_after_hold_time(mock_factory: MockFactory) -> None:
    clock = Clock()
    sewing = CurrentSense("sewing-1", pin=17, hold_s=3, pin_factory=mock_factory, clock=clock)
    mock_factory.pin(17).drive_high()
    assert sewing.poll().state == "idle"
    clock.advance(3.1)
    assert sewing.poll().state == "busy"


def test_chatter_shorter_than_hold_time_is_ignored(mock_factory: MockFactory) -> None:
    clock = Clock()
    sewing = CurrentSense("sewing-1", pin="GPIO17", hold_s=3, pin_factory=mock_factory, clock=clock)
    pin = mock_factory.pin(17)
    states = []
    for _ in range(10):
        pin.drive_high()
        states.append(sewing.poll().state)
        clock.advance(1)
        pin.drive_low()
        states.append(sewing.poll().state)
        clock.advance(1)
    assert set(states) == {"idle"}


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
