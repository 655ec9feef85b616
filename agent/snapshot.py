"""What a driver sees when it polls a machine, and the clock reading events are stamped with.

    MachineSnapshot("printer-1", "printing", job=JobView("benchy.gcode", key="benchy.gcode@1700000000",
                    progress=42.0, estimate_mm=1830.0))

A driver reports; it never decides billing (``agent.sessions.advance`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# states a driver may report; "printing" and "paused" mean a job is running on a printer
STATES = ("offline", "idle", "busy", "printing", "paused", "error")
RUNNING = ("printing", "paused")


@dataclass(frozen=True)
class JobView:
    """The job a controller shows: running, or finished and still displayed (``outcome`` set).

    ``key`` names one run of a file (name and upload date…) so a finished job shown for hours is
    recognised as the same one. ``estimate_mm`` is the slicer's whole-file filament estimate;
    ``filament_mm`` a measured length so far (Moonraker, Marlin M78), when the controller has one.
    """

    name: str
    key: str
    progress: float | None = None
    elapsed_s: int | None = None
    remaining_s: int | None = None
    estimate_mm: float | None = None
    filament_mm: float | None = None
    outcome: str | None = None  # completed / cancelled / failed, once the job is over
    estimate_pending: bool = False  # the controller may still give ``estimate_mm`` (analysis not done)
    # the run this one replaced between two polls, as the controller reported its end (Moonraker's history)
    replaced: JobView | None = None


@dataclass(frozen=True)
class MachineSnapshot:
    machine: str
    state: str
    job: JobView | None = None
    temperatures: dict[str, float] = field(default_factory=dict)
    detail: str | None = None
    # whole-file filament estimates that came after their run ended, by run key (OctoPrint's late analysis)
    late_estimates: dict[str, float] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.state in RUNNING and self.job is not None

    @property
    def busy(self) -> bool:
        return self.state in ("printing", "busy")


@dataclass(frozen=True)
class Now:
    """One reading of the clocks: durations use ``mono_ns`` within ``boot``; wall time if synced."""

    mono_ns: int
    wall_ns: int
    wall_synced: bool
    boot: str
