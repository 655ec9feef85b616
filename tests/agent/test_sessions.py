"""The pure session core: snapshots in, usage events out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.sessions import (
    Pending,
    Rules,
    Track,
    advance,
    badge,
    dump_track,
    load_track,
    open_session,
    shutdown,
)
from agent.snapshot import JobView, MachineSnapshot, Now

NS = 1_000_000_000
RULES = Rules(checkpoint_s=45, idle_timeout_s=300)
S1 = "11111111-1111-4111-8111-111111111111"


def now(t: float, boot: str = "boot-a") -> Now:
    return Now(mono_ns=int(t * NS), wall_ns=1_700_000_000 * NS + int(t * NS), wall_synced=True, boot=boot)


def job(progress: float | None = 10.0, outcome: str | None = None, key: str = "benchy@1", **kw: object) -> JobView:
    return JobView(name="benchy.gcode", key=key, progress=progress, estimate_mm=2000.0, outcome=outcome, **kw)  # type: ignore[arg-type]


def snap(state: str, view: JobView | None = None) -> MachineSnapshot:
    return MachineSnapshot("printer-1", state, job=view)


IDLE = snap("idle")


def run(steps: list[tuple[float, MachineSnapshot]], track: Track | None = None) -> tuple[Track, list[Pending]]:
    track = track or Track("printer-1", "printer")
    events: list[Pending] = []
    for t, s in steps:
        track, more = advance(track, s, now(t), RULES)
        events += more
    return track, events


def kinds(events: list[Pending]) -> list[str]:
    return [e.type for e in events]


def data(events: list[Pending], kind: str) -> object:
    return next(e.data for e in events if e.type == kind)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # start, run, complete
        (
            [(0, IDLE), (1, snap("printing", job(1))), (20, snap("printing", job(90))), (21, snap("idle", job(100, "completed")))],
            ["session_started", "job_started", "job_ended", "session_ended"],
        ),
        # pause and resume stay one job
        (
            [(0, IDLE), (1, snap("printing", job(5))), (5, snap("paused", job(30))), (9, snap("printing", job(30))), (12, snap("idle", job(100, "completed")))],
            ["session_started", "job_started", "job_ended", "session_ended"],
        ),
        # a job shorter than the poll interval: only its finished view was seen
        (
            [(0, IDLE), (1, snap("idle", job(100, "completed")))],
            ["session_started", "job_started", "job_ended", "session_ended"],
        ),
        # a finished job shown since before the agent started is not ours
        ([(0, snap("idle", job(100, "completed"))), (1, snap("idle", job(100, "completed")))], []),
        # a file selected but never printed
        ([(0, IDLE), (1, snap("idle", job(None)))], []),
    ],
)
def test_job_lifecycle_events(steps: list[tuple[float, MachineSnapshot]], expected: list[str]) -> None:
    _, events = run(steps)
    assert kinds(events) == expected


def test_completed_print_reports_job_time_and_whole_estimate() -> None:
    steps = [(0, IDLE), (1, snap("printing", job(1))), (5, snap("paused", job(30))), (9, snap("printing", job(30))), (21, snap("idle", job(100, "completed")))]
    track, events = run(steps)
    ended = data(events, "job_ended")
    assert (ended.outcome, ended.job_s, ended.filament_mm, ended.filament_source) == ("completed", 20, 2000.0, "estimate")  # type: ignore[attr-defined]
    final = data(events, "session_ended")
    assert (final.reason, final.session_s, final.busy_s, final.job_s) == ("job_end", 20, 16, 20)  # type: ignore[attr-defined]
    assert track.session is None and track.last_ended_key == "benchy@1"


def test_finished_job_still_shown_is_never_counted_twice() -> None:
    steps = [(0, IDLE), (1, snap("printing", job(50))), (2, snap("idle", job(100, "completed")))]
    steps += [(3 + i, snap("idle", job(100, "completed"))) for i in range(100)]
    _, events = run(steps)
    assert kinds(events).count("job_ended") == 1


def test_same_file_printed_again_is_a_new_job() -> None:
    steps = [(0, IDLE), (1, snap("printing", job(50))), (2, snap("idle", job(100, "completed"))), (3, snap("printing", job(1)))]
    _, events = run(steps)
    assert kinds(events).count("job_started") == 2


@pytest.mark.parametrize(
    ("end", "outcome", "filament"),
    [
        (snap("idle", job(25, "cancelled")), "cancelled", 500.0),
        (snap("error", job(25)), "failed", 500.0),
        (snap("idle"), "cancelled", 500.0),  # the controller forgot the file: what we saw last
    ],
)
def test_interrupted_print_pays_filament_pro_rata(end: MachineSnapshot, outcome: str, filament: float) -> None:
    _, events = run([(0, IDLE), (1, snap("printing", job(10))), (30, snap("printing", job(25))), (31, end)])
    ended = data(events, "job_ended")
    assert (ended.outcome, ended.filament_mm, ended.filament_source, ended.progress) == (outcome, filament, "estimate", 25)  # type: ignore[attr-defined]


def test_configured_material_is_named_on_the_job() -> None:
    track, events = Track("printer-1", "printer"), []
    for t, s in [(0, IDLE), (1, snap("printing", job(10))), (2, snap("idle", job(100, "completed")))]:
        track, more = advance(track, s, now(t), Rules(material="petg"))
        events += more
    assert data(events, "job_ended").material == "petg"  # type: ignore[attr-defined]


def test_measured_filament_wins_over_estimate() -> None:
    steps = [(0, IDLE), (1, snap("printing", job(10, filament_mm=120.0))), (2, snap("idle", job(100, "completed", filament_mm=1234.5)))]
    ended = data(run(steps)[1], "job_ended")
    assert (ended.filament_mm, ended.filament_source) == (1234.5, "measured")  # type: ignore[attr-defined]


def test_unreachable_printer_does_not_end_the_job() -> None:
    _, events = run([(0, IDLE), (1, snap("printing", job(10))), (5, snap("offline")), (9, snap("printing", job(20)))])
    assert "job_ended" not in kinds(events)


def test_checkpoints_every_45_seconds_of_an_open_session() -> None:
    steps = [(0, IDLE), (1, snap("printing", job(1)))] + [(t, snap("printing", job(5))) for t in range(2, 200)]
    _, events = run(steps)
    checkpoints = [e for e in events if e.type == "session_checkpoint"]
    assert [e.now.mono_ns // NS for e in checkpoints] == [46, 91, 136, 181]
    assert checkpoints[1].data.session_s == 90 and checkpoints[1].data.job_s == 90


def relay_track() -> tuple[Track, list[Pending]]:
    track = Track("laser-1", "relay")
    return open_session(track, now(0), session_id=S1, auth="online", visit="v-1", holder="h-alice")


def test_badge_out_ends_a_relay_session_with_busy_time() -> None:
    track, events = relay_track()
    laser = [(1, MachineSnapshot("laser-1", "busy")), (61, MachineSnapshot("laser-1", "idle")), (70, MachineSnapshot("laser-1", "idle"))]
    track, more = run(laser, track)
    track, out = badge(track, "h-alice", now(80))
    assert kinds(events + more + out) == ["session_started", "session_checkpoint", "session_ended"]
    assert (out[0].data.reason, out[0].data.session_s, out[0].data.busy_s) == ("badge_out", 80, 60)  # type: ignore[attr-defined]
    assert track.session is None


def test_someone_else_badging_does_not_end_the_session() -> None:
    track, _ = relay_track()
    track, out = badge(track, "h-bob", now(10))
    assert out == [] and track.session is not None


def test_badge_out_never_cuts_a_running_print() -> None:
    track = Track("printer-1", "printer")
    track, _ = open_session(track, now(0), session_id=S1, auth="online", holder="h-alice")
    track, _ = run([(1, snap("printing", job(5)))], track)
    track, out = badge(track, "h-alice", now(10))
    assert out == [] and track.job is not None


def test_idle_timeout_ends_a_relay_session() -> None:
    track, _ = relay_track()
    steps = [(1, MachineSnapshot("laser-1", "busy")), (100, MachineSnapshot("laser-1", "idle"))]
    steps += [(t, MachineSnapshot("laser-1", "idle")) for t in (200, 399, 401)]
    track, events = run(steps, track)
    ended = [e for e in events if e.type == "session_ended"]
    assert [(e.data.reason, e.now.mono_ns // NS) for e in ended] == [("idle_timeout", 401)]  # type: ignore[attr-defined]


def test_relay_machine_running_without_a_badge_opens_an_unclaimed_session() -> None:
    _, events = run([(0, MachineSnapshot("laser-1", "busy"))], Track("laser-1", "relay"))
    assert kinds(events) == ["session_started"] and events[0].data.auth == "none"  # type: ignore[attr-defined]


def test_clean_shutdown_closes_idle_session_but_keeps_a_print() -> None:
    track, _ = relay_track()
    assert kinds(shutdown(track, now(30))[1]) == ["session_ended"]
    printing, _ = run([(0, IDLE), (1, snap("printing", job(5)))])
    assert shutdown(printing, now(30)) == (printing, [])


def restart(track: Track, first: MachineSnapshot, t: float = 500) -> tuple[Track, list[Pending]]:
    reloaded = load_track(dump_track(track))
    assert reloaded == track
    return advance(reloaded, first, now(t, boot="boot-b"), RULES)


def test_restart_continues_a_print_that_still_runs() -> None:
    track, _ = run([(0, IDLE), (1, snap("printing", job(5))), (50, snap("printing", job(20)))])
    assert track.session is not None
    track2, events = restart(track, snap("printing", job(60)), t=3)
    assert events == [] and track2.session is not None
    assert track2.session.id == track.session.id and track2.session.boot == "boot-b"
    track3, events = advance(track2, snap("idle", job(100, "completed")), now(13, "boot-b"), RULES)
    assert kinds(events) == ["job_ended", "session_ended"]
    assert events[1].data.job_s == 49 + 10  # type: ignore[attr-defined]


def test_power_loss_closes_a_session_whose_job_is_gone_at_last_checkpoint() -> None:
    track, events = run([(0, IDLE), (1, snap("printing", job(5)))] + [(t, snap("printing", job(40))) for t in range(2, 60)])
    persisted = replace(track, session=replace(track.session, session_ns=46 * NS, busy_ns=45 * NS, job_ns=45 * NS))  # type: ignore[arg-type]
    _, events = restart(persisted, IDLE)
    assert kinds(events) == ["job_ended", "session_ended"]
    assert events[0].data.outcome == "failed" and events[0].data.filament_mm == 800.0  # type: ignore[attr-defined]
    ended = events[1].data
    assert (ended.reason, ended.session_s, ended.job_s) == ("power_loss_recovered", 46, 45)  # type: ignore[attr-defined]


def test_power_loss_with_job_finished_meanwhile_keeps_its_outcome() -> None:
    track, _ = run([(0, IDLE), (1, snap("printing", job(5))), (9, snap("printing", job(90)))])
    _, events = restart(track, snap("idle", job(100, "completed")))
    assert kinds(events) == ["job_ended", "session_ended"]
    assert events[0].data.outcome == "completed" and events[1].data.reason == "power_loss_recovered"  # type: ignore[attr-defined]


def test_restart_while_printer_unreachable_waits_for_an_answer() -> None:
    track, _ = run([(0, IDLE), (1, snap("printing", job(5)))])
    track2, events = restart(track, snap("offline"))
    assert events == [] and track2.job is not None
