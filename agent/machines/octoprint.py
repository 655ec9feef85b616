"""OctoPrint through ``octorest``: ``/api/printer`` and ``/api/job`` (never its push classes).

    printer = OctoPrint("printer-1", url="http://octopi.local", api_key=key)
    printer.poll()     # MachineSnapshot(state='printing', job=JobView('benchy.gcode', progress=42.0, ...))

Starts even when OctoPrint is down: no request is made until ``poll()``.

A job is one run of a file. OctoPrint names the file (origin, path, upload date), so the
driver tells runs apart itself: a run begins when the file starts printing after it was seen
not printing, or when ``printTime`` goes back or ``completion`` falls (the same file started
again between two polls). The run's key is kept in ``memory`` (the outbox) so that a restarted
agent goes on with the same job.

OctoPrint analyses a file only while idle, so a run may end before its filament estimate exists.
Such runs are kept in ``memory`` too, and their file's analysis is asked again every
``LATE_EVERY_S`` for up to ``LATE_KEEP_S``: what it finds is reported in ``late_estimates`` (the
agent then sends the ``job_corrected`` it owes), whatever was printed since.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import requests
from octorest import OctoRest

from agent.errors import MachineUnreachable
from agent.machines import slicer
from agent.machines.http import TimeoutSession
from agent.machines.memory import Memory, Scratch, recall, remember
from agent.snapshot import JobView, MachineSnapshot

LATE_EVERY_S = 10.0  # how often the analysis of a finished run's file is asked again
LATE_KEEP_S = 6 * 3600.0  # a Pi analyses a big file in minutes: after this the run is given up
LATE_MOST = 4  # runs followed for a late estimate at once


class OctoPrint:
    """A printer run by OctoPrint, read over its REST API with a timeout on every call."""

    def __init__(
        self, machine: str, *, url: str, api_key: str, timeout_s: float = 5.0,
        session: TimeoutSession | None = None, memory: Memory | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.machine = machine
        self._memory: Memory = memory if memory is not None else Scratch()
        self._wall = wall
        self._estimates: dict[str, float] = {}  # file key -> filament estimate found outside /api/job
        self._read_comments: set[str] = set()
        self._late_asked = float("-inf")
        self.url = url
        self._timeout_s = timeout_s
        self._session = session or TimeoutSession(timeout_s)
        # the key goes in the header ourselves: octorest would call OctoPrint from its constructor
        self._session.headers["X-Api-Key"] = api_key
        self._client = OctoRest(url=url, session=self._session)

    def poll(self) -> MachineSnapshot:
        try:
            # /api/printer and /api/job are two requests and a job may start or end between them: a
            # torn pair (printer idle, job still "Printing") is read again, never taken for a short job
            for _ in range(3):
                printer = self._call(self._client.printer)
                if printer is None:  # OctoPrint answers 409 while no printer is connected: offline, not a failure
                    return self._not_operational()
                job = self._call(self._client.job_info) or {}
                if _agree(printer, job):
                    break
            return self._late(self._keyed(self._with_estimate(snapshot(self.machine, printer, job), job), job), job)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise MachineUnreachable(f"OctoPrint at {self.url} sent data we cannot read: {err!r}") from err

    def _not_operational(self) -> MachineSnapshot:
        """No printer connected: offline, unless OctoPrint closed the connection on an error (an
        emergency stop, a halted board): ``/api/job`` then says "Offline after error" and the
        ``error``, and the job it ran has failed."""
        body = self._call(self._client.job_info) or {}
        text = body.get("state") if isinstance(body, dict) else None
        if isinstance(text, str) and text.startswith(("Error", "Offline after error")):
            detail = f"{text}: {body['error']}" if isinstance(body.get("error"), str) else text
            return MachineSnapshot(self.machine, "error", job=_job(body, "error"), detail=detail[:500])
        return MachineSnapshot(self.machine, "offline", detail="OctoPrint has no printer connected")

    def _call(self, method: Any) -> Any:
        try:
            return method()
        except RuntimeError as err:  # octorest's way of saying "not 2xx"
            if self._session.last_status == 409:
                return None
            raise MachineUnreachable(
                f"OctoPrint at {self.url} answered {self._session.last_status} — is the API key right?"
            ) from err
        except requests.Timeout as err:
            raise MachineUnreachable(
                f"no answer from OctoPrint at {self.url} within {self._timeout_s} s — is it running?"
            ) from err
        except requests.RequestException as err:
            # requests' JSONDecodeError is one too: a malformed answer
            raise MachineUnreachable(f"cannot read OctoPrint at {self.url}: {err}") from err

    def _with_estimate(self, snap: MachineSnapshot, body: dict[str, Any]) -> MachineSnapshot:
        """A job whose estimate /api/job does not give yet: OctoPrint analyses a file only while idle
        (``gcodeAnalysis.runAt: idle``), so ask ``/api/files/{origin}/{path}`` each poll, and read the
        slicer's comment in the G-code once; until one answers, the estimate is pending."""
        job = snap.job
        file = ((body.get("job") or {}).get("file")) or {}
        origin, path = file.get("origin") or "local", file.get("path") or file.get("name")
        if job is None or job.estimate_mm is not None or not isinstance(path, str):
            return snap
        if job.key not in self._estimates:
            found = self._analysis(origin, path) or self._slicer_comment(origin, path, job.key)
            if found is not None:
                self._estimates = {job.key: found}  # one file at a time: the cache stays small
        estimate = self._estimates.get(job.key)
        return replace(snap, job=replace(job, estimate_mm=estimate, estimate_pending=estimate is None))

    def _analysis(self, origin: str, path: str) -> float | None:
        try:
            info = self._call(lambda: self._client.files_info(origin, quote(path))) or {}
        except MachineUnreachable:
            return None  # the job is still read; its estimate will be asked again next poll
        analysis = info.get("gcodeAnalysis") if isinstance(info, dict) else None
        return _filament(analysis.get("filament")) if isinstance(analysis, dict) else None

    def _slicer_comment(self, origin: str, path: str, key: str) -> float | None:
        if origin != "local" or key in self._read_comments:
            return None  # a file on the printer's SD card cannot be downloaded
        self._read_comments = {key}
        url = f"{self.url.rstrip('/')}/downloads/files/local/{quote(path)}"
        for span in ("bytes=-262144", "bytes=0-65535"):  # PrusaSlicer writes it at the end, Cura at the start
            try:
                response = self._session.get(url, headers={"Range": span})
            except requests.RequestException:
                return None
            if response.status_code not in (200, 206):
                return None
            found = slicer.filament_mm(response.content[-262144:])
            if found is not None:
                return found
        return None

    def _keyed(self, snap: MachineSnapshot, body: dict[str, Any]) -> MachineSnapshot:
        """The snapshot with its job keyed by run, not by file; a run replaced between two polls (the
        next one already started) comes with how OctoPrint logged its end."""
        if snap.job is None:
            return snap
        slot = f"octoprint_run:{self.machine}"
        before = recall(self._memory, slot)
        run = next_run(before, snap.job, snap.running, self._wall())
        if run is None:
            return snap
        job = replace(snap.job, key=run["key"])
        if before is None or run["key"] != before.get("key"):  # a new run: what OctoPrint logged before it
            file = ((body.get("job") or {}).get("file")) or {}
            where = {"origin": file.get("origin") or "local", "path": file.get("path") or file.get("name")}
            run = {**run, **where, "name": job.name, "logged": self._last_print(where)}
            if before is not None and not before.get("ended"):
                job = replace(job, replaced=self._replaced(before))
        remember(self._memory, slot, run)
        return replace(snap, job=job)

    def _last_print(self, where: dict[str, Any]) -> dict[str, Any] | None:
        """The last print OctoPrint logged for a file (``prints.last {date, success, printTime}`` of
        ``/api/files/{origin}/{path}``, written when a print is done, cancelled or fails)."""
        if not isinstance(where.get("path"), str):
            return None
        try:
            info = self._call(lambda: self._client.files_info(where.get("origin") or "local", quote(where["path"])))
        except MachineUnreachable:
            return None
        last = ((info or {}).get("prints") or {}).get("last") if isinstance(info, dict) else None
        return last if isinstance(last, dict) else None

    def _replaced(self, before: dict[str, Any]) -> JobView | None:
        """How the run followed until the last poll ended, if OctoPrint logged it since it began."""
        last = self._last_print(before)
        seen = before.get("print_time")
        if last is None or last == before.get("logged"):
            return None  # not logged (yet): the agent judges from the progress it saw
        if isinstance(seen, int) and (_seconds(last.get("printTime")) or 0) + 1 < seen:
            return None  # shorter than the run was seen printing: an older log written late
        done = bool(last.get("success"))
        return JobView(
            name=str(before.get("name") or before.get("file")), key=str(before["key"]),
            progress=100.0 if done else before.get("completion"), elapsed_s=_seconds(last.get("printTime")),
            outcome="completed" if done else "cancelled",
        )  # fmt: skip

    def _late(self, snap: MachineSnapshot, body: dict[str, Any]) -> MachineSnapshot:
        """``snap`` with the estimates found since for runs whose estimate was still pending."""
        slot, wall = f"octoprint_late:{self.machine}", self._wall()
        runs = {k: v for k, v in (recall(self._memory, slot) or {}).items()
                if isinstance(v, dict) and wall - float(v.get("since", 0)) < LATE_KEEP_S}  # fmt: skip
        before = dict(runs)
        file = ((body.get("job") or {}).get("file")) or {}
        run_shown = snap.job is not None and (snap.running or snap.job.outcome is not None)
        if snap.job and run_shown and snap.job.estimate_pending and snap.job.key not in runs:
            entry = {"origin": file.get("origin") or "local", "path": file.get("path") or file.get("name"), "since": wall}
            runs = dict(list({**runs, snap.job.key: entry}.items())[-LATE_MOST:])
        waiting = [k for k, v in runs.items() if v.get("mm") is None and (snap.job is None or k != snap.job.key)]
        if waiting and wall - self._late_asked >= LATE_EVERY_S:
            # one file per turn, the one asked longest ago: a slow OctoPrint never holds a poll for long
            self._late_asked, key = wall, waiting[0]
            run = runs.pop(key)
            runs[key] = {**run, "mm": self._analysis(str(run["origin"]), str(run["path"]))}
        if runs != before:
            remember(self._memory, slot, runs)
        found = {k: float(v["mm"]) for k, v in runs.items() if isinstance(v.get("mm"), int | float)}
        return replace(snap, late_estimates=found) if found else snap

    def close(self) -> None:
        self._session.close()


def next_run(run: dict[str, Any] | None, view: JobView, running: bool, wall: float) -> dict[str, Any] | None:
    """The run ``view`` belongs to, given the run followed before (None: a file only selected)."""
    count = int((run or {}).get("count", 0)) + 1  # runs seen by this agent: two may start in one second
    # OctoPrint shows no progress at all while cancelling: the last figures seen are kept
    shown = {"print_time": view.elapsed_s, "completion": view.progress}
    figures = {"file": view.key, **{k: v for k, v in shown.items() if v is not None}}
    fresh = {**figures, "key": f"{view.key}#{int(wall)}.{count}", "count": count}
    same_file = run is not None and run.get("file") == view.key
    if running:
        if run is None or not same_file or run.get("ended") or _started_again(run, view):
            return {**fresh, "ended": False}
        return {**run, **figures, "ended": False}
    if view.outcome is None:
        return None  # selected, never printed: no run
    if same_file and run is not None and (not run.get("ended") or not _moved(run, view)):
        return {**run, **figures, "ended": True}  # the run we followed, ended (and shown for hours)
    return {**fresh, "ended": True}  # a run seen only once finished


def _started_again(run: dict[str, Any], view: JobView) -> bool:
    """printTime went back or completion fell: the file was printed again since the last poll."""
    before_t, before_c = run.get("print_time"), run.get("completion")
    went_back = view.elapsed_s is not None and isinstance(before_t, int) and view.elapsed_s + 5 < before_t
    fell = view.progress is not None and isinstance(before_c, int | float) and view.progress + 1.0 < before_c
    return went_back or fell


def _moved(run: dict[str, Any], view: JobView) -> bool:
    """A finished job whose figures differ from the last ones seen: another run ended unseen."""
    return run.get("print_time") != view.elapsed_s or run.get("completion") != view.progress


def snapshot(machine: str, printer: dict[str, Any], job: dict[str, Any]) -> MachineSnapshot:
    flags = printer["state"]["flags"]
    state = _state(flags)
    temperatures = {
        name: float(reading["actual"])
        for name, reading in (printer.get("temperature") or {}).items()
        if isinstance(reading, dict) and isinstance(reading.get("actual"), int | float)
    }
    return MachineSnapshot(machine, state, job=_job(job, state), temperatures=temperatures,
                           detail=printer["state"].get("text"))  # fmt: skip


def _state(flags: dict[str, Any]) -> str:
    if flags.get("error") or (flags.get("closedOrError") and not flags.get("operational")):
        return "error"
    if flags.get("paused") or flags.get("pausing"):
        return "paused"
    if flags.get("printing") or flags.get("cancelling") or flags.get("finishing"):
        return "printing"
    return "idle"


# how OctoPrint's state strings begin while a job runs (/api/job repeats the printer's state text)
_RUNNING_TEXT = ("Printing", "Pausing", "Paused", "Resuming", "Cancelling", "Finishing", "Sending", "Starting")


def _job_running(body: dict[str, Any]) -> bool | None:
    text = body.get("state")
    return text.startswith(_RUNNING_TEXT) if isinstance(text, str) else None


def _agree(printer: dict[str, Any], job: dict[str, Any]) -> bool:
    """Whether both answers describe the same moment: running in one means running in the other."""
    running = _job_running(job)
    return running is None or running == (_state(printer["state"]["flags"]) in ("printing", "paused"))


def _job(body: dict[str, Any], state: str) -> JobView | None:
    info = body.get("job") or {}
    file = info.get("file") or {}
    name = file.get("name")
    if not name:
        return None
    progress = body.get("progress") or {}
    completion = progress.get("completion")
    completion = None if completion is None else max(0.0, min(100.0, float(completion)))
    return JobView(
        name=str(name),
        key=f"{file.get('origin', 'local')}:{file.get('path') or name}@{file.get('date')}",
        progress=completion,
        elapsed_s=_seconds(progress.get("printTime")),
        remaining_s=_seconds(progress.get("printTimeLeft")),
        estimate_mm=_filament(info.get("filament")),
        outcome=None if state != "error" and _job_running(body) else _outcome(state, completion, progress.get("printTime")),
    )


def _outcome(state: str, completion: float | None, print_time: Any) -> str | None:
    """How the job shown ended, when the printer is no longer running it (None: never printed)."""
    if state in ("printing", "paused") or (completion is None and not print_time):
        return None
    if state == "error":
        return "failed"
    return "completed" if completion is not None and completion >= 100.0 else "cancelled"


def _filament(filament: Any) -> float | None:
    """The slicer's whole-file estimate over all tools (null until analysis ends, and for SD prints)."""
    if not isinstance(filament, dict):
        return None
    raw = [t.get("length") for t in filament.values() if isinstance(t, dict)]
    lengths = [float(v) for v in raw if isinstance(v, int | float)]
    return sum(lengths) if lengths else None


def _seconds(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and value >= 0 else None
