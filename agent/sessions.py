"""The pure core: (what we knew of a machine, a new snapshot, the clock) -> (what we know now, events).

    track, events = advance(track, snapshot, now, rules)
    [e.type for e in events]     # ['session_started', 'job_started']

A printer's session is bound to its job (``job_end``); a relay machine's to the person who
badged in (``badge_out``, ``idle_timeout``). No I/O here: the shell writes ``events`` and the
new ``Track`` to the outbox in one transaction.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, replace
from typing import Any

from agent.snapshot import JobView, MachineSnapshot, Now
from broker.messages import (
    JobCorrected,
    JobEnded,
    JobStarted,
    SessionEnded,
    SessionStarted,
    SessionTotals,
)

NS = 1_000_000_000


@dataclass(frozen=True)
class Rules:
    checkpoint_s: float = 45.0
    idle_timeout_s: float = 600.0
    material: str | None = None  # what the printer has loaded, when the configuration says
    filament_wait_s: float = 30.0  # how long a finished job waits for an estimate its controller still owes


@dataclass(frozen=True)
class Pending:
    """A usage event before the outbox gives it a stream and a seq."""

    machine: str
    type: str
    session: str
    data: Any
    now: Now


@dataclass(frozen=True)
class Job:
    key: str
    name: str
    job_ns: int = 0
    progress: float | None = None
    estimate_mm: float | None = None
    filament_mm: float | None = None
    time_source: str = "agent"  # "controller" once the controller's own print time replaced ours
    ended_ns: int | None = None  # over, waiting for its filament estimate since (no time counts then)
    outcome: str | None = None
    estimate_pending: bool = False  # the controller said an estimate may still come


@dataclass(frozen=True)
class Owed:
    """A run that ended without the filament figure its controller still owed: a ``job_corrected``
    event is due to its session once the estimate comes."""

    session: str
    key: str
    name: str
    outcome: str
    progress: float | None = None


@dataclass(frozen=True)
class Session:
    id: str
    auth: str  # online / offline / none
    boot: str
    last_ns: int  # monotonic clock of the last advance, in ``boot``
    checkpoint_ns: int
    idle_since_ns: int
    visit: str | None = None
    credential: str | None = None  # allow-list digest (offline auth)
    holder: str | None = None  # local fingerprint of the credential, for badge-out
    display_name: str | None = None
    session_ns: int = 0
    busy_ns: int = 0
    job_ns: int = 0


@dataclass(frozen=True)
class Track:
    """What the agent remembers of one machine between polls (persisted beside the outbox)."""

    machine: str
    kind: str  # printer / relay
    session: Session | None = None
    job: Job | None = None
    busy: bool = False
    last_ended_key: str | None = None
    primed: bool = False  # a snapshot was seen since this track began
    blind_ns: int = 0  # time a running job's controller was unreachable: job time only if it still runs
    owed: tuple[Owed, ...] = ()  # ended runs whose filament is still to come, oldest first


MAX_OWED = 8  # runs waiting for a late estimate; the oldest is given up past this


Step = tuple[Track, list[Pending]]


# -- polling ----------------------------------------------------------------------------------


def advance(track: Track, snap: MachineSnapshot, now: Now, rules: Rules = Rules()) -> Step:
    """Account the time since the last poll, then turn what changed into usage events."""
    events: list[Pending] = []
    if track.session and track.session.boot != now.boot:
        track, events = _recover(track, snap, now, rules)
    track = _regain_sight(_accumulate(track, now, snap), snap)
    for step in (_corrections, _jobs, _short_job, _unclaimed_use, _idle_timeout):
        track, more = step(track, snap, now, rules)
        events += more
    track, more = _checkpoint(track, now, rules)
    offline = snap.state == "offline"
    busy = snap.busy if not offline else track.busy
    return replace(track, busy=busy, primed=True, blind_ns=track.blind_ns if offline else 0), events + more


def _accumulate(track: Track, now: Now, snap: MachineSnapshot | None = None) -> Track:
    s = track.session
    if s is None:
        return track
    dt = max(now.mono_ns - s.last_ns, 0)
    if track.job and track.job.ended_ns is not None:  # the print is over: nothing more to count
        return replace(track, session=replace(s, last_ns=now.mono_ns))
    # blind (unreachable now, or since the last poll): session time; job time only if the job still runs
    if snap is not None and (snap.state == "offline" or track.blind_ns) and track.job:
        session = replace(s, last_ns=now.mono_ns, session_ns=s.session_ns + dt)
        return replace(track, session=session, blind_ns=track.blind_ns + dt)
    job = replace(track.job, job_ns=track.job.job_ns + dt) if track.job else None
    session = replace(
        s,
        last_ns=now.mono_ns,
        session_ns=s.session_ns + dt,
        busy_ns=s.busy_ns + (dt if track.busy else 0),
        job_ns=s.job_ns + (dt if track.job else 0),
    )
    return replace(track, session=session, job=job)


def _regain_sight(track: Track, snap: MachineSnapshot) -> Track:
    """The controller answers again and still runs the job: the time it was unreachable was job time."""
    s, job, view = track.session, track.job, snap.job
    if not track.blind_ns or s is None or job is None or not (snap.running and view and view.key == job.key):
        return track
    dt = track.blind_ns
    session = replace(s, job_ns=s.job_ns + dt, busy_ns=s.busy_ns + (dt if track.busy else 0))
    return replace(track, session=session, job=replace(job, job_ns=job.job_ns + dt), blind_ns=0)


def _jobs(track: Track, snap: MachineSnapshot, now: Now, rules: Rules) -> Step:
    events: list[Pending] = []
    view = snap.job
    if track.job and (snap.running and view and view.key != track.job.key):
        # replaced unseen (the next run started between two polls): it ended as far as it was seen
        told = view.replaced if view.replaced and view.replaced.key == track.job.key else None
        unseen = "completed" if (track.job.progress or 0.0) >= 99.5 else "cancelled"
        track, events = _end_job(track, told, now, (told.outcome if told else None) or unseen, rules)
    if track.job and not snap.running and snap.state != "offline":
        shown = view if view and view.key == track.job.key else None
        # a job gone while its controller was unreachable died with it (OctoPrint restarted, printer
        # disconnected): failed, not cancelled
        fallback = "failed" if snap.state == "error" or track.blind_ns else "cancelled"
        outcome = track.job.outcome or (shown.outcome if shown else None) or fallback
        if _owed_filament(track.job, shown, now, rules):
            job = _follow(track.job, shown) if shown else track.job
            return replace(track, job=replace(job, ended_ns=job.ended_ns or now.mono_ns, outcome=outcome)), events
        track, more = _end_job(track, shown, now, outcome, rules)
        return track, events + more
    if snap.running and view and not track.job:
        track, more = _start_job(track, view, now)
        events += more
    elif snap.running and view and track.job:
        track = replace(track, job=_follow(track.job, view))
    return track, events


def _owed_filament(job: Job, shown: JobView | None, now: Now, rules: Rules) -> bool:
    """A finished job with no filament figure yet, whose controller says one may still come (OctoPrint
    analyses a file only once idle): its end waits for it, up to ``filament_wait_s``."""
    if shown is None or not shown.estimate_pending or job.filament_mm is not None or job.estimate_mm is not None:
        return False
    ended_ns = job.ended_ns if job.ended_ns is not None else now.mono_ns
    return now.mono_ns - ended_ns < rules.filament_wait_s * NS


def _follow(job: Job, view: JobView) -> Job:
    return replace(
        job,
        progress=view.progress if view.progress is not None else job.progress,
        estimate_mm=view.estimate_mm if view.estimate_mm is not None else job.estimate_mm,
        filament_mm=view.filament_mm if view.filament_mm is not None else job.filament_mm,
        estimate_pending=view.estimate_pending,
    )


def _start_job(track: Track, view: JobView, now: Now) -> Step:
    events: list[Pending] = []
    if track.session is None:
        track, events = open_session(track, now, session_id=str(uuid.uuid4()), auth="none")
    assert track.session is not None
    job = _follow(Job(key=view.key, name=view.name), view)
    data = JobStarted(job=view.name[:500], estimate_mm=view.estimate_mm)
    events.append(Pending(track.machine, "job_started", track.session.id, data, now))
    return replace(track, job=job), events


def _end_job(
    track: Track, shown: JobView | None, now: Now, outcome: str, rules: Rules, *, close: bool = True
) -> Step:
    assert track.job is not None and track.session is not None
    job = _follow(track.job, shown) if shown else track.job
    if outcome == "completed":
        job = replace(job, progress=100.0)
    filament_mm, source = _filament(job, outcome)
    data = JobEnded(
        job=job.name[:500],
        outcome=outcome,
        job_s=job.job_ns // NS,
        progress=job.progress,
        filament_mm=filament_mm,
        filament_source=source,
        material=rules.material,
        time_source=job.time_source,
    )
    session = track.session
    events = [Pending(track.machine, "job_ended", session.id, data, now)]
    track = replace(track, job=None, last_ended_key=job.key)
    if filament_mm is None and job.estimate_pending:
        owed = Owed(session.id, job.key, job.name, outcome, job.progress)
        track = replace(track, owed=(*track.owed, owed)[-MAX_OWED:])
    if track.kind == "printer" and close:
        track, more = end_session(track, now, "job_end")
        events += more
    else:
        track = replace(track, session=replace(session, idle_since_ns=now.mono_ns))
    return track, events


def _filament(job: Job, outcome: str) -> tuple[float | None, str | None]:
    """Measured when the controller counts it; else the whole-file estimate, prorated unless completed."""
    if job.filament_mm is not None:
        return round(job.filament_mm, 1), "measured"
    if job.estimate_mm is None:
        return None, None
    share = 1.0 if outcome == "completed" else (job.progress or 0.0) / 100
    return round(job.estimate_mm * share, 1), "estimate"


def _corrections(track: Track, snap: MachineSnapshot, now: Now, rules: Rules) -> Step:
    """The filament of runs that ended without it, as soon as their controller gives the estimate."""
    events: list[Pending] = []
    owed: list[Owed] = []
    for run in track.owed:
        shown = snap.job.estimate_mm if snap.job and snap.job.key == run.key else None
        estimate = shown if shown is not None else snap.late_estimates.get(run.key)
        if estimate is None:
            owed.append(run)
            continue
        mm, source = _filament(Job(run.key, run.name, progress=run.progress, estimate_mm=estimate), run.outcome)
        data = JobCorrected(job_key=run.key[:500], job=run.name[:500], filament_mm=mm or 0.0,
                            filament_source=source or "estimate", material=rules.material)  # fmt: skip
        events.append(Pending(track.machine, "job_corrected", run.session, data, now))
    return (replace(track, owed=tuple(owed)), events) if events else (track, [])


def _short_job(track: Track, snap: MachineSnapshot, now: Now, rules: Rules) -> Step:
    """A job that started and ended between two polls: only its finished view was ever seen."""
    view = snap.job
    if snap.running or view is None or view.outcome is None or view.key == track.last_ended_key:
        return track, []
    if track.job is not None and track.job.key == view.key:  # our job, its end waiting for its filament
        return track, []
    if not track.primed:  # shown since before we started watching: not ours to count
        return replace(track, last_ended_key=view.key), []
    track, events = _start_job(track, replace(view, outcome=None), now)
    track, more = _end_job(track, view, now, view.outcome, rules)
    return track, events + more


def _unclaimed_use(track: Track, snap: MachineSnapshot, now: Now, rules: Rules) -> Step:
    """A relay machine running with nobody badged in (no interlock) still gets a session."""
    if track.session or track.kind != "relay" or snap.state != "busy":
        return track, []
    return open_session(track, now, session_id=str(uuid.uuid4()), auth="none")


def _idle_timeout(track: Track, snap: MachineSnapshot, now: Now, rules: Rules) -> Step:
    s = track.session
    if s is None:
        return track, []
    if track.job or snap.busy or track.busy:  # idle time counts from the first idle poll
        return replace(track, session=replace(s, idle_since_ns=now.mono_ns)), []
    if now.mono_ns - s.idle_since_ns < rules.idle_timeout_s * NS:
        return track, []
    return end_session(track, now, "idle_timeout")


def _checkpoint(track: Track, now: Now, rules: Rules) -> Step:
    s = track.session
    if s is None or now.mono_ns - s.checkpoint_ns < rules.checkpoint_s * NS:
        return track, []
    event = Pending(track.machine, "session_checkpoint", s.id, totals(s), now)
    return replace(track, session=replace(s, checkpoint_ns=now.mono_ns)), [event]


def totals(s: Session) -> SessionTotals:
    return SessionTotals(session_s=s.session_ns // NS, busy_s=s.busy_ns // NS, job_s=s.job_ns // NS)


# -- recovery after a restart or a power loss -----------------------------------------------


def _recover(track: Track, snap: MachineSnapshot, now: Now, rules: Rules) -> Step:
    """Continue a session whose job still runs (new boot, totals carried); close any other."""
    assert track.session is not None
    agent_only = same_kernel_boot(track.session.boot, now.boot)  # the Pi did not restart, only the agent
    s = replace(track.session, boot=now.boot, last_ns=now.mono_ns, checkpoint_ns=now.mono_ns)
    s = replace(s, idle_since_ns=now.mono_ns)
    if track.job and snap.running and snap.job and snap.job.key == track.job.key:
        if same_kernel_boot(track.session.boot, now.boot):
            # only the agent restarted: the monotonic clock went on, so the print's time since the
            # track was saved (the restart included) is known exactly and is counted
            s = replace(s, last_ns=track.session.last_ns)
        return replace(track, session=s), []
    if snap.state == "offline" and track.job:
        return replace(track, session=s), []  # cannot tell yet: decide when the machine answers
    track = replace(track, session=s, busy=False)
    events: list[Pending] = []
    if track.job:
        shown = snap.job if snap.job and snap.job.key == track.job.key and snap.job.outcome else None
        if shown and track.kind == "printer" and agent_only:
            # only the agent restarted, and the controller saw the whole job: its figures win
            return _end_job(_controller_time(track, shown), shown, now, shown.outcome or "failed", rules)
        # the job is gone and we never saw how it ended: the printer lost power with us
        outcome = shown.outcome if shown and shown.outcome else "failed"
        track, events = _end_job(track, shown, now, outcome, rules, close=False)
    more = _ended(track, now, "power_loss_recovered")
    return replace(track, session=None, job=None), events + more


def _controller_time(track: Track, shown: JobView) -> Track:
    """The controller's own print time (OctoPrint printTime, Moonraker print_duration) for a job the
    agent did not see to its end; the time it adds counts in the session too."""
    job, s = track.job, track.session
    assert job is not None and s is not None
    if shown.elapsed_s is None or shown.elapsed_s * NS <= job.job_ns:
        return track
    extra = shown.elapsed_s * NS - job.job_ns
    session = replace(s, session_ns=s.session_ns + extra, busy_ns=s.busy_ns + extra, job_ns=s.job_ns + extra)
    return replace(track, session=session, job=replace(job, job_ns=shown.elapsed_s * NS, time_source="controller"))


def same_kernel_boot(before: str, after: str) -> bool:
    """Whether two agent boot ids (``<kernel boot id>.<run>``) share one kernel boot, hence one
    monotonic clock."""
    kernel, _, run = before.rpartition(".")
    return bool(kernel and run) and kernel != "unknown-boot" and after.rpartition(".")[0] == kernel


# -- people ------------------------------------------------------------------------------


def open_session(
    track: Track,
    now: Now,
    *,
    session_id: str,
    auth: str,
    visit: str | None = None,
    credential: str | None = None,
    holder: str | None = None,
    display_name: str | None = None,
) -> Step:
    """Start a session (a credential was accepted, or a machine started with nobody identified)."""
    session = Session(
        id=session_id,
        auth=auth,
        boot=now.boot,
        last_ns=now.mono_ns,
        checkpoint_ns=now.mono_ns,
        idle_since_ns=now.mono_ns,
        visit=visit,
        credential=credential,
        holder=holder,
        display_name=display_name,
    )
    data = SessionStarted(auth=auth, visit=visit, credential=credential)
    return replace(track, session=session), [Pending(track.machine, "session_started", session_id, data, now)]


def claim(track: Track, now: Now, **who: Any) -> Step:
    """A person identified at a machine whose unclaimed (``auth="none"``) session is running: it stays
    one session; the person is noted locally (badge-out, "in use" for anyone else). Which visit pays
    is billing's decision, made when it answered the credential for this session id."""
    assert track.session is not None
    return replace(track, session=replace(track.session, **who)), []


def badge(track: Track, holder: str, now: Now) -> Step:
    """The same credential presented again: badge-out, unless a job is running (never cut a print)."""
    s = track.session
    if s is None or s.holder != holder or track.job is not None:
        return track, []
    return end_session(_accumulate(track, now), now, "badge_out")


def end_session(track: Track, now: Now, reason: str) -> Step:
    return replace(track, session=None), _ended(track, now, reason)


def _ended(track: Track, now: Now, reason: str) -> list[Pending]:
    s = track.session
    assert s is not None
    t = totals(s)
    data = SessionEnded(reason=reason, session_s=t.session_s, busy_s=t.busy_s, job_s=t.job_s)
    return [Pending(track.machine, "session_ended", s.id, data, now)]


def shutdown(track: Track, now: Now) -> Step:
    """The agent stops cleanly: close an idle session; a running job keeps its session for the restart."""
    if track.session is None or track.job is not None or track.busy:
        return track, []
    return end_session(_accumulate(track, now), now, "shutdown")


# -- persistence ------------------------------------------------------------------------------


def dump_track(track: Track) -> str:
    return json.dumps(dataclasses.asdict(track), separators=(",", ":"))


def load_track(text: str) -> Track:
    raw = json.loads(text)
    session = Session(**raw.pop("session")) if raw.get("session") else None
    job = Job(**raw.pop("job")) if raw.get("job") else None
    owed = tuple(Owed(**run) for run in raw.pop("owed", ()))
    raw.pop("session", None)
    raw.pop("job", None)
    return Track(**raw, session=session, job=job, owed=owed)
