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


def card_of(page: str, machine: str) -> str:
    card = page[page.rindex("<article", 0, page.index(f'id="card-{machine}"')) :]
    return card[: card.index("</article>")].replace("\u202f", " ").replace("\xa0", " ")


def online(live: LiveState, agent: str, machine: str, up: bool = True) -> None:
    live.status(agent, AgentStatus(online=up, bdseq=1, version="1", machines=(machine,)))


def test_a_badge_session_on_a_resting_laser_says_in_use_by_whom_since_when(staff: FlaskClient, live: LiveState) -> None:
    online(live, "pi-laser", "laser-1")
    live.state(MachineState(machine="laser-1", state="idle", wall_ns=0, session=SESSION, user="Camille Martin",
                            elapsed_s=960))  # fmt: skip
    live.cost("laser-1", SESSION, 250, claimed=True)
    card = card_of(staff.get("/live/").text, "laser-1")
    assert "state-busy" in card and ">en marche<" in card and "libre" not in card
    assert "Camille Martin" in card and "depuis 08:44" in card  # NOW (09:00 in Europe/Paris) - 16 min
    assert "2,50 €" in card


def test_an_unclaimed_session_says_so_with_the_attach_link_one_click_away(staff: FlaskClient, live: LiveState) -> None:
    online(live, "pi-sewing", "sewing-1")
    live.state(MachineState(machine="sewing-1", state="busy", wall_ns=0, session=SESSION, elapsed_s=960))
    live.cost("sewing-1", SESSION, None, claimed=False)
    card = card_of(staff.get("/live/").text, "sewing-1")
    assert "state-unclaimed" in card and "personne ne l&#39;a réclamée" in card
    assert f'href="/desk/attach/{SESSION}"' in card and "Rattacher à une visite" in card
    attach = staff.get(f"/desk/attach/{SESSION}")
    assert attach.status_code == 404  # billing has no such session: the page does not invent one


def test_the_cost_of_an_unreachable_machine_is_frozen_and_says_since_when(staff: FlaskClient, live: LiveState) -> None:
    printing(live)
    live.state(MachineState(machine="printer-1", state="offline", wall_ns=0, session=SESSION, user="Camille"))
    live.cost("printer-1", SESSION, 999)
    card = card_of(staff.get("/live/").text, "printer-1")
    assert "state-offline" in card and "la machine ne répond plus depuis le 15/01/2027 09:00" in card
    assert "2,40 €" in card and "9,99" not in card and "figé depuis 09:00" in card


def test_out_of_service_and_the_last_refusal_are_shown(staff: FlaskClient, live: LiveState,
                                                       redis_client: Any) -> None:  # fmt: skip
    """The contract with the engineer who adds out-of-service and training refusals: two JSON fields."""
    online(live, "pi-laser", "laser-1")
    live.state(MachineState(machine="laser-1", state="idle", wall_ns=0))
    redis_client.hset("fabmeter:machine:laser-1", mapping={
        "out_of_service": json.dumps({"reason": "lens", "message": "lentille fêlée", "since": "2027-01-15T08:30:00+00:00"}),
        "last_refusal": json.dumps({"reason": "training", "message": "formation laser requise",
                                    "at": "2027-01-15T08:55:00+00:00"}),
    })  # fmt: skip
    card = card_of(staff.get("/live/").text, "laser-1")
    assert "state-out_of_service" in card and ">hors service<" in card
    assert "Hors service depuis le 15/01/2027 09:30 : lentille fêlée" in card
    assert "Refus à 09:55 : formation laser requise" in card


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"online": "1", "state": "idle"}, "idle"),
        ({"online": "1", "state": "idle", "pin_wait_until": "1800000030"}, "locked"),
        ({"online": "1", "state": "busy", "session": "s", "unclaimed": "1"}, "unclaimed"),
        ({"online": "1", "state": "idle", "session": "s"}, "busy"),
        ({"online": "1", "state": "offline", "session": "s", "unclaimed": "1"}, "offline"),
        ({"online": "0", "state": "busy", "session": "s", "out_of_service": '{"reason": "x"}'}, "out_of_service"),
        ({"online": "1", "state": "idle", "out_of_service": "not json"}, "idle"),
    ],
)
def test_what_a_card_says_first(fields: dict[str, str], shown: str) -> None:
    assert machine_card({"machine": "m"} | fields).shown_state == shown
