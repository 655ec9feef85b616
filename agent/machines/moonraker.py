"""Klipper through Moonraker: ``print_stats`` (measured ``filament_used``) and ``virtual_sdcard``.

    printer = Moonraker("printer-2", url="http://klipper.local:7125")
    printer.poll()     # MachineSnapshot(state='printing', job=JobView('part.gcode', filament_mm=812.4, ...))
"""

from __future__ import annotations

from typing import Any

import requests

from agent.errors import MachineUnreachable
from agent.machines.http import TimeoutSession
from agent.snapshot import JobView, MachineSnapshot

QUERY = "/printer/objects/query?print_stats&virtual_sdcard&extruder&heater_bed&webhooks"
STATES = {"printing": "printing", "paused": "paused", "error": "error"}
OUTCOMES = {"complete": "completed", "cancelled": "cancelled", "error": "failed"}


class Moonraker:
    """A Klipper printer read over Moonraker's HTTP API, with a timeout on every call."""

    def __init__(
        self, machine: str, *, url: str, api_key: str | None = None, timeout_s: float = 5.0,
        session: TimeoutSession | None = None,
    ) -> None:  # fmt: skip
        self.machine = machine
        self.url = url.rstrip("/")
        self._session = session or TimeoutSession(timeout_s)
        if api_key:
            self._session.headers["X-Api-Key"] = api_key

    def poll(self) -> MachineSnapshot:
        try:
            response = self._session.get(self.url + QUERY)
            if response.status_code == 503:  # Klippy not connected to Moonraker: offline, not a failure
                return MachineSnapshot(self.machine, "offline", detail="Klipper is not connected")
            response.raise_for_status()
            status = response.json()["result"]["status"]
            return snapshot(self.machine, status)
        except requests.RequestException as err:
            raise MachineUnreachable(f"cannot read Moonraker at {self.url}: {err}") from err
        except (KeyError, TypeError, ValueError) as err:
            raise MachineUnreachable(f"Moonraker at {self.url} sent data we cannot read: {err!r}") from err

    def close(self) -> None:
        self._session.close()


def snapshot(machine: str, status: dict[str, Any]) -> MachineSnapshot:
    stats = status["print_stats"]
    raw_state = stats.get("state", "standby")
    state = STATES.get(raw_state, "idle")
    if (status.get("webhooks") or {}).get("state") in ("shutdown", "error"):
        state = "error"
    temperatures = {
        name: float(status[name]["temperature"])
        for name in ("extruder", "heater_bed")
        if isinstance((status.get(name) or {}).get("temperature"), int | float)
    }
    return MachineSnapshot(machine, state, job=_job(stats, status, raw_state), temperatures=temperatures)


def _job(stats: dict[str, Any], status: dict[str, Any], raw_state: str) -> JobView | None:
    name = stats.get("filename")
    if not name:
        return None
    progress = (status.get("virtual_sdcard") or {}).get("progress")
    return JobView(
        name=str(name),
        key=str(name),
        progress=None if progress is None else round(float(progress) * 100, 2),
        elapsed_s=int(stats.get("print_duration") or 0),
        filament_mm=float(stats.get("filament_used") or 0.0),
        outcome=OUTCOMES.get(raw_state),
    )
