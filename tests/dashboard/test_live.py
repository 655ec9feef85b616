"""The live board: cards from the Redis hashes billing writes, and the SSE stream that resumes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from billing.live import CHANGES, LiveState
from broker.messages import AgentStatus, MachineState
from dashboard.board import machine_card

NOW = 1_800_000_000.0
SESSION = "6f0c2a3e-0000-4000-8000-000000000001"


def events(text: str) -> list[dict[str, Any]]:
    """Parse an SSE body into [{'id':…, 'event':…, 'data':…}] (comments and retry skipped)."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in fields:
            found.append(fields | {"data": json.loads(fields["data"])})
    return found


@pytest.fixture
def live(redis_client: Any) -> LiveState:
    return LiveState(redis_client, clock=lambda: NOW)


def printing(live: LiveState, progress: float = 42.0) -> None:
    live.status("pi-printer", AgentStatus(online=True, bdseq=1, version="1", machines=("printer-1",)))
    live.state(MachineState(machine="printer-1", state="printing", wall_ns=int(NOW * 1e9), job="boat.gcode",
                            progress=progress, elapsed_s=3600, remaining_s=5400,
                            temperatures={"nozzle": 214.6, "bed": 60.0}, session=SESSION, user="Camille"))  # fmt: skip
    live.cost("printer-1", SESSION, 240)


def test_a_printing_machine_shows_who_what_progress_end_and_cost(staff: FlaskClient, live: LiveState) -> None:
    printing(live)
    page = staff.get("/live/").text.replace("\u202f", " ").replace("\xa0", " ")
    card = page[page.index('id="card-printer-1"'):]
    card = card[: card.index("</article>")]
    assert "Imprimante 3D Prusa" in card and "impression" in card
    assert "Camille" in card and "boat.gcode" in card
    assert 'value="42.0"' in card and "1 h 00" in card
    assert "215 °C" in card and "2,40 €" in card
    assert 'class="ends">10:30<' in card  # NOW + 1 h 30 in Europe/Paris, whatever the OS zone


def test_machines_never_seen_are_listed_offline(staff: FlaskClient) -> None:
    page = staff.get("/live/").text
    for machine in ("laser-1", "printer-1", "sewing-1"):
        assert f'class="card state-offline offline" id="card-{machine}"' in page
    assert "jamais vue" in page


def test_an_agent_going_offline_greys_its_cards(staff: FlaskClient, live: LiveState) -> None:
    printing(live)
    live.status("pi-printer", AgentStatus(online=False, bdseq=1, version="1", machines=("printer-1",)))
    page = staff.get("/live/").text
    assert 'class="card state-offline offline" id="card-printer-1"' in page
    assert "hors ligne depuis" in page and "boat.gcode" in page


def test_the_board_in_english(staff: FlaskClient, live: LiveState) -> None:
    printing(live)
    staff.get("/language/en")
    page = staff.get("/live/").text
    assert "printing" in page and "Cost so far" in page and "€2.40" in page


def test_the_event_stream_sends_every_change_with_its_stream_id(staff: FlaskClient, live: LiveState,
                                                                 redis_client: Any) -> None:  # fmt: skip
    page = staff.get("/live/").text
    since = page.split("/live/events?since=")[1].split('"')[0]
    printing(live, 10.0)
    printing(live, 11.0)
    body = staff.get(f"/live/events?since={since}").text
    assert body.startswith("retry: 2000")
    got = events(body)
    ids = [entry[0] for entry in redis_client.xrange(CHANGES)]
    assert [e["id"] for e in got] == ids  # status, state, cost, state, cost... all after `since`
    assert all(e["event"] == "machine" and e["data"]["machine"] == "printer-1" for e in got)
    assert 'value="11.0"' in got[-1]["data"]["html"] and got[-1]["data"]["state"] == "printing"


def test_a_reconnecting_browser_resumes_after_last_event_id(staff: FlaskClient, live: LiveState,
                                                            redis_client: Any) -> None:  # fmt: skip
    printing(live, 10.0)
    seen = redis_client.xrange(CHANGES)[-1][0]
    printing(live, 55.0)
    later = [entry[0] for entry in redis_client.xrange(CHANGES, min=f"({seen}")]
    # the browser's header wins over the ?since= of the page it was first opened from
    body = staff.get("/live/events?since=0-0", headers={"Last-Event-ID": seen}).text
    got = events(body)
    assert [e["id"] for e in got] == later and len(later) == 3
    assert 'value="55.0"' in got[-1]["data"]["html"]


def test_without_an_id_the_stream_starts_now_and_ignores_garbage(staff: FlaskClient, live: LiveState) -> None:
    printing(live)
    assert events(staff.get("/live/events").text) == []
    assert events(staff.get("/live/events", headers={"Last-Event-ID": "drop table"}).text) == []


def test_a_corrupt_stream_entry_is_skipped(staff: FlaskClient, live: LiveState, redis_client: Any) -> None:
    redis_client.xadd(CHANGES, {"machine": "printer-1", "state": "{not json"})
    printing(live)
    got = events(staff.get("/live/events?since=0-0").text)
    assert got and all(e["data"]["machine"] == "printer-1" for e in got)


@pytest.mark.parametrize(
    ("fields", "state", "online", "progress"),
    [
        ({"machine": "m", "state": "idle", "online": "1"}, "idle", True, None),
        ({"machine": "m", "state": "printing", "online": "0", "progress": "12.5"}, "offline", False, 12.5),
        ({"machine": "m", "progress": "nan?", "temperatures": "[1,2]"}, "offline", False, None),
    ],
)
def test_card_from_hash_fields(fields: dict[str, str], state: str, online: bool, progress: float | None) -> None:
    card = machine_card(fields)
    assert (card.shown_state, card.online, card.progress, card.temperatures) == (state, online, progress, ())


def test_a_pin_pad_slowed_by_wrong_pins_shows_on_its_card_until_it_listens_again(
    staff: FlaskClient, live: LiveState
) -> None:
    live.pin_wait("laser-1", int(NOW) + 30, 7)
    page = staff.get("/live/").text
    card = page[page.index('id="card-laser-1"') :]
    card = card[: card.index("</article>")]
    assert 'class="pin-wait"' in card and "7 PIN faux" in card
    live.pin_wait("laser-1", None)
    assert 'class="pin-wait"' not in staff.get("/live/").text
