"""Klipper through Moonraker: ``print_stats`` (measured ``filament_used``), ``virtual_sdcard``, and
the job history (``/server/history``) that names each run.

    printer = Moonraker("printer-2", url="http://klipper.local:7125")
    printer.poll()     # MachineSnapshot(state='printing', job=JobView('part.gcode', key='moonraker:00002A', ...))

A job is one entry of Moonraker's history: its ``job_id`` is the key, so the same file queued
again is another job. When a run is replaced by the next one between two polls, its history
entry says how it ended (``completed``, ``cancelled``, ``error``, ``klippy_shutdown``…) and
how long it printed. Without the history component, a job is keyed by its file name.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import requests

from agent.errors import MachineUnreachable
from agent.machines.http import TimeoutSession
from agent.machines.memory import Memory, Scratch, recall, remember
from agent.snapshot import JobView, MachineSnapshot

QUERY = "/printer/objects/query?print_stats&virtual_sdcard&extruder&heater_bed&webhooks"
LATEST = "/server/history/list?limit=1&order=desc"
ONE_JOB = "/server/history/job?uid="
STATES = {"printing": "printing", "paused": "paused", "error": "error"}
OUTCOMES = {"complete": "completed", "cancelled": "cancelled", "error": "failed"}
# moonraker/components/history.py: how a history entry ends
HISTORY_OUTCOMES = {"completed": "completed", "cancelled": "cancelled", "error": "failed",
                    "klippy_shutdown": "failed", "klippy_disconnect": "failed", "server_exit": "failed",
                    "interrupted": "failed"}  # fmt: skip


class Moonraker:
    """A Klipper printer read over Moonraker's HTTP API, with a timeout on every call."""

    def __init__(
        self, machine: str, *, url: str, api_key: str | None = None, timeout_s: float = 5.0,
        session: TimeoutSession | None = None, memory: Memory | None = None,
    ) -> None:  # fmt: skip
        self.machine = machine
        self.url = url.rstrip("/")
        self._session = session or TimeoutSession(timeout_s)
        self._memory: Memory = memory if memory is not None else Scratch()
        self._has_history = True
        if api_key:
            self._session.headers["X-Api-Key"] = api_key

    def poll(self) -> MachineSnapshot:
        try:
            response = self._session.get(self.url + QUERY)
            if response.status_code == 503:  # Klippy not connected to Moonraker: offline, not a failure
                return MachineSnapshot(self.machine, "offline", detail="Klipper is not connected")
            response.raise_for_status()
            snap = snapshot(self.machine, response.json()["result"]["status"])
            return self._keyed(snap)
        except requests.RequestException as err:
            raise MachineUnreachable(f"cannot read Moonraker at {self.url}: {err}") from err
        except (KeyError, TypeError, ValueError) as err:
            raise MachineUnreachable(f"Moonraker at {self.url} sent data we cannot read: {err!r}") from err

    def _history(self, path: str) -> dict[str, Any] | None:
        if not self._has_history:
            return None
        response = self._session.get(self.url + path)
        if response.status_code == 404 and path == LATEST:
            self._has_history = False  # Moonraker without [history]: keyed by file name
            return None
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()["result"]
        return result

    def _keyed(self, snap: MachineSnapshot) -> MachineSnapshot:
        """The job keyed by its history ``job_id``; the run it replaced, as the history ended it."""
        if snap.job is None:
            return snap
        latest = self._history(LATEST)
        jobs = (latest or {}).get("jobs") or []
        entry = jobs[0] if jobs and jobs[0].get("filename") == snap.job.name else None
        if entry is None:
            return snap
        job = with_entry(snap.job, entry)
        slot = f"moonraker_job:{self.machine}"
        followed = (recall(self._memory, slot) or {}).get("key")
        if followed and followed != job.key and snap.running:
            old = self._history(ONE_JOB + followed.removeprefix("moonraker:"))
            if old and isinstance(old.get("job"), dict):
                job = replace(job, replaced=with_entry(None, old["job"]))
        if snap.running:
            remember(self._memory, slot, {"key": job.key})
        return MachineSnapshot(snap.machine, snap.state, job=job, temperatures=snap.temperatures,
                               detail=snap.detail)  # fmt: skip

    def close(self) -> None:
        self._session.close()


def with_entry(view: JobView | None, entry: dict[str, Any]) -> JobView:
    """A job as its history entry tells it (``job_id``, ``status``, ``print_duration``, ``filament_used``)."""
    key = f"moonraker:{entry['job_id']}"
    outcome = HISTORY_OUTCOMES.get(str(entry.get("status")))
    duration, used = entry.get("print_duration"), entry.get("filament_used")
    if view is None:
        return JobView(name=str(entry.get("filename") or "?"), key=key, outcome=outcome or "failed",
                       elapsed_s=int(duration) if isinstance(duration, int | float) else None,
                       filament_mm=float(used) if isinstance(used, int | float) else None)  # fmt: skip
    return replace(view, key=key, outcome=view.outcome and (outcome or view.outcome))


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
