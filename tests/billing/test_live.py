"""The live state in Redis: who is on a machine, even when the print was attached at the desk."""

from __future__ import annotations

import fakeredis

from billing.live import LiveState, machine_key
from broker.messages import AgentStatus, MachineState

PRINT = "11111111-1111-4111-8111-111111111111"
NEXT = "22222222-2222-4222-8222-222222222222"


def printing(session: str, user: str | None = None) -> MachineState:
    return MachineState(machine="printer-1", state="printing", wall_ns=1, job="benchy.gcode",
                        session=session, user=user)  # fmt: skip


def online(live: LiveState, online: bool = True) -> None:
    live.status("pi-printer", AgentStatus(online=online, bdseq=1, version="1", machines=("printer-1",)))


def test_a_print_attached_at_the_desk_shows_the_visitor_until_the_next_session() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    live = LiveState(client)
    online(live)
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


def test_the_cost_freezes_while_the_machine_is_unreachable() -> None:
    now = [1_800_000_000]
    client = fakeredis.FakeRedis(decode_responses=True)
    live = LiveState(client, clock=lambda: now[0])
    online(live)
    live.state(printing(PRINT, user="Alice"), "pi-printer")
    live.cost("printer-1", PRINT, 250)
    now[0] += 60
    live.state(MachineState(machine="printer-1", state="offline", wall_ns=1, session=PRINT, user="Alice"))
    live.cost("printer-1", PRINT, 300)  # checkpoints still count time: the board does not follow
    now[0] += 60
    live.state(MachineState(machine="printer-1", state="offline", wall_ns=1, session=PRINT, user="Alice"))
    fields = client.hgetall(machine_key("printer-1"))
    assert fields["cost_cents"] == "250" and fields["unreachable_since"] == "1800000060"
    live.state(printing(PRINT, user="Alice"), "pi-printer")  # OctoPrint answers again
    live.cost("printer-1", PRINT, 310)
    fields = client.hgetall(machine_key("printer-1"))
    assert fields["cost_cents"] == "310" and fields["unreachable_since"] == ""
    online(live, False)
    live.cost("printer-1", PRINT, 400)  # the whole agent is gone: frozen too
    assert client.hget(machine_key("printer-1"), "cost_cents") == "310"


def test_a_session_no_visit_pays_for_is_marked_unclaimed_until_it_is() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    live = LiveState(client)
    online(live)
    live.state(printing(PRINT), "pi-printer")
    live.cost("printer-1", PRINT, None, claimed=False)
    assert client.hget(machine_key("printer-1"), "unclaimed") == "1"
    live.cost("printer-1", PRINT, 120, user="Camille", claimed=True)
    assert client.hget(machine_key("printer-1"), "unclaimed") == ""
    live.cost("printer-1", PRINT, None, claimed=False)
    live.state(MachineState(machine="printer-1", state="idle", wall_ns=1))  # the session is over
    assert client.hget(machine_key("printer-1"), "unclaimed") == ""
