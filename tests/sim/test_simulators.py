"""The demo's simulated machines are read correctly by the real drivers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.machines.grbl import Grbl
from agent.machines.octoprint import OctoPrint
from agent.sim.grbl import SimulatedGrbl
from agent.sim.octoprint import SimulatedOctoPrint


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("at", "state", "job", "outcome"),
    [(5, "idle", None, None), (60, "printing", "benchy.gcode", None),
     (111, "idle", "benchy.gcode", "completed"), (160, "printing", "phone-stand.gcode", None),
     (171, "idle", "phone-stand.gcode", "cancelled")],
)  # fmt: skip
def test_the_octoprint_driver_reads_the_print_cycle(at: float, state: str, job: str | None,
                                                     outcome: str | None) -> None:  # fmt: skip
    clock = Clock()
    sim = SimulatedOctoPrint(job_s=100, idle_s=10, cancel_every=2, clock=clock).start()
    try:
        clock.now = at
        snap = OctoPrint("printer-1", url=sim.url, api_key="demo-key").poll()
        assert snap.state == state
        assert (snap.job.name if snap.job else None) == job
        assert (snap.job.outcome if snap.job else None) == outcome
    finally:
        sim.stop()


class SteppingClock(Clock):
    """Time moves on at every request: /api/printer and /api/job never show quite the same moment."""

    def __init__(self, step: float) -> None:
        super().__init__()
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.parametrize("step", [0.13, 0.29, 0.5])
def test_a_job_starting_or_ending_between_the_two_requests_is_counted_once(step: float) -> None:
    from agent.sessions import Track, advance
    from agent.snapshot import Now

    clock = SteppingClock(step)
    sim = SimulatedOctoPrint(job_s=3, idle_s=1, cancel_every=3, clock=clock).start()
    try:
        driver, track, started = OctoPrint("printer-1", url=sim.url, api_key="demo-key"), Track("printer-1", "printer"), 0
        for i in range(122):
            if i == 120:
                clock.step = 0.0  # time stands still for the last polls: the agent has caught up
            track, events = advance(track, driver.poll(), Now(i * 10**9, i * 10**9, True, "b"))
            started += sum(e.type == "job_started" for e in events)
        assert started == sim.cycle.phase().n > 5
    finally:
        sim.stop()


def test_a_wrong_api_key_is_refused() -> None:
    from agent.errors import MachineUnreachable

    sim = SimulatedOctoPrint().start()
    try:
        with pytest.raises(MachineUnreachable, match="403"):
            OctoPrint("printer-1", url=sim.url, api_key="wrong").poll()
    finally:
        sim.stop()


def test_the_grbl_driver_sees_the_laser_cut_and_stop(tmp_path: Path) -> None:
    clock = Clock()
    sim = SimulatedGrbl(link=tmp_path / "laser", cut_s=10, idle_s=10, clock=clock).start()
    laser = Grbl("laser-1", port=str(tmp_path / "laser"))
    try:
        states = []
        for now in (1, 15, 25):
            clock.now = now
            states.append(laser.poll().state)
            time.sleep(0.05)
        assert states == ["idle", "busy", "idle"]
    finally:
        laser.close()
        sim.stop()


def test_a_simulated_current_sensor_makes_the_sewing_machine_busy_then_idle() -> None:
    from gpiozero.pins.mock import MockFactory

    from agent.config import MachineConfig
    from agent.machines import build

    factory = MockFactory()
    config = MachineConfig(id="sewing-1", driver="gpio", pin="GPIO27", on_s=0.0, off_s=0.0, simulate=(0.3, 0.3))
    sewing = build(config, pin_factory=factory)
    try:
        seen = []
        for _ in range(16):
            seen.append(sewing.poll().state)
            time.sleep(0.05)
        changes = [state for i, state in enumerate(seen) if i == 0 or seen[i - 1] != state]
        assert changes[:3] == ["idle", "busy", "idle"], seen
    finally:
        sewing.close()


def test_a_triggered_laser_cuts_once_per_job_sent(tmp_path: Path) -> None:
    clock = Clock()
    trigger = tmp_path / "job"
    sim = SimulatedGrbl(link=tmp_path / "laser", cut_s=10, idle_s=1, clock=clock, trigger=trigger)
    assert not sim.cutting()
    clock.now = 50
    assert not sim.cutting()  # no job sent, however long we wait
    trigger.touch()
    assert sim.cutting()
    clock.now = 59
    assert sim.cutting()
    clock.now = 61
    assert not sim.cutting()
