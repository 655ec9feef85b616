"""The OctoPrint driver against a fake OctoPrint HTTP server serving recorded JSON.

The recordings follow OctoPrint 1.11.8 as tests/agent/test_real_octoprint.py runs it: once a cancel
begins, ``/api/job`` shows ``progress`` all null (completion, printTime), "Cancelling" then
"Operational"; a completed job keeps completion 100 and its printTime.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.errors import MachineUnreachable
from agent.machines.octoprint import OctoPrint
from agent.sessions import Track, advance
from agent.snapshot import Now
from broker.services import free_port
from tests.agent.fake_octoprint import FakeOctoPrint


@pytest.fixture
def octo() -> Iterator[FakeOctoPrint]:
    with FakeOctoPrint(api_key="k") as fake:
        yield fake


def driver(octo: FakeOctoPrint, **kw: object) -> OctoPrint:
    return OctoPrint("printer-1", url=octo.url, api_key="k", **kw)  # type: ignore[arg-type]


def test_printing_job_with_progress_temperatures_and_estimate(octo: FakeOctoPrint) -> None:
    octo.show("printing")
    snap = driver(octo).poll()
    assert snap.state == "printing" and snap.running
    assert snap.temperatures == {"bed": 60.1, "tool0": 214.8}
    assert snap.job is not None
    assert (snap.job.name, snap.job.progress, snap.job.elapsed_s, snap.job.remaining_s) == ("benchy.gcode", 42.5, 1500, 2100)
    assert snap.job.estimate_mm == 2412.8 and snap.job.outcome is None


@pytest.mark.parametrize(
    ("scene", "state", "outcome"),
    [
        ("paused", "paused", None),
        ("cancelling", "printing", None),
        ("completed", "idle", "completed"),
        ("cancelled", "idle", None),  # no progress shown after a cancel: the agent knows it from the run
        ("selected", "idle", None),
        ("error", "error", "failed"),
    ],
)
def test_states_and_outcomes(octo: FakeOctoPrint, scene: str, state: str, outcome: str | None) -> None:
    octo.show(scene)
    snap = driver(octo).poll()
    assert snap.state == state
    assert snap.job is not None and snap.job.outcome == outcome


def test_409_means_no_printer_connected_not_a_failure(octo: FakeOctoPrint) -> None:
    octo.show("no_printer")
    snap = driver(octo).poll()
    assert (snap.state, snap.detail) == ("offline", "OctoPrint has no printer connected")


def test_malformed_json_is_one_clear_error(octo: FakeOctoPrint) -> None:
    octo.show("malformed")
    with pytest.raises(MachineUnreachable, match=f"cannot read OctoPrint at {octo.url}"):
        driver(octo).poll()


def test_wrong_api_key_says_so(octo: FakeOctoPrint) -> None:
    with pytest.raises(MachineUnreachable, match="answered 403 — is the API key right"):
        OctoPrint("printer-1", url=octo.url, api_key="wrong").poll()


def test_connection_refused_is_unreachable_and_constructing_needs_no_server() -> None:
    printer = OctoPrint("printer-1", url=f"http://127.0.0.1:{free_port()}", api_key="k")
    with pytest.raises(MachineUnreachable, match="cannot read OctoPrint"):
        printer.poll()


def test_every_call_has_a_timeout(octo: FakeOctoPrint) -> None:
    octo.delay_s = 1.0
    with pytest.raises(MachineUnreachable, match="within 0.2 s"):
        driver(octo, timeout_s=0.2).poll()


def test_a_whole_print_seen_through_the_driver_is_billed_once(octo: FakeOctoPrint) -> None:
    printer, track, seen = driver(octo), Track("printer-1", "printer"), []
    for t, scene in enumerate(["selected", "printing", "paused", "cancelling", "cancelled", "cancelled"]):
        octo.show(scene)
        track, events = advance(track, printer.poll(), Now(t * 10**9, t, True, "b"))
        seen += events
    assert [e.type for e in seen] == ["session_started", "job_started", "job_ended", "session_ended"]
    ended = seen[2].data
    # the last progress seen before the cancel (the pause at 50 %): OctoPrint shows none afterwards
    assert (ended.outcome, ended.progress, ended.filament_mm, ended.filament_source) == ("cancelled", 50.0, 1206.4, "estimate")
