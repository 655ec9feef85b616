"""The live state in Redis: who is on a machine, even when the print was attached at the desk."""

from __future__ import annotations

import fakeredis

from billing.live import LiveState, machine_key
from broker.messages import MachineState

PRINT = "11111111-1111-4111-8111-111111111111"
NEXT = "22222222-2222-4222-8222-222222222222"


def printing(session: str, user: str | None = None) -> MachineState:
    return MachineState(machine="printer-1", state="printing", wall_ns=1, job="benchy.gcode",
                        session=session, user=user)  # fmt: skip


def test_a_print_attached_at_the_desk_shows_the_visitor_until_the_next_session() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    live = LiveState(client)
    live.state(printing(PRINT), "pi-printer")
    assert client.hget(machine_key("printer-1"), "user") == ""
    live.cost("printer-1", PRINT, 42, user="Camille Martin")
    live.state(printing(PRINT), "pi-printer")  # the agent still does not know who
    assert client.hget(machine_key("printer-1"), "user") == "Camille Martin"
    assert client.hget(machine_key("printer-1"), "cost_cents") == "42"
    live.state(printing(NEXT), "pi-printer")  # the next print is nobody's yet
    assert client.hget(machine_key("printer-1"), "user") == ""
    live.cost("printer-1", PRINT, 99, user="Camille Martin")  # late news of the old session
    assert client.hget(machine_key("printer-1"), "user") == ""


def test_a_badged_user_is_never_overwritten_by_the_visit_label() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    live = LiveState(client)
    live.state(printing(PRINT, user="Alice"), "pi-printer")
    live.cost("printer-1", PRINT, 10, user="Visiteur 7")
    assert client.hget(machine_key("printer-1"), "user") == "Alice"


def test_a_waiting_pin_pad_is_shown_and_found_again_after_a_restart() -> None:
    live = LiveState(fakeredis.FakeRedis(decode_responses=True), clock=lambda: 1_800_000_000)
    live.pin_wait("laser-1", 1_800_000_030, 7)
    live.pin_wait("printer-1", None)
    assert live.pin_waiting() == {"laser-1"}
    live.pin_wait("laser-1", None)
    assert live.pin_waiting() == set()
