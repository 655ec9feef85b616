"""Who is at the machine: RDM6300 frames, the keypad, the offline allow-list, the relay interlock."""

from __future__ import annotations

import json
import queue
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from agent.auth import Credential, offline_spending_cents, offline_verdict
from agent.config import AgentConfig, MachineConfig, MqttConfig
from agent.interlock import Interlock
from agent.machines.gpio import CurrentSense
from agent.main import Agent
from agent.outbox import Outbox
from agent.readers import (
    Deduper,
    MatrixKeypad,
    Rdm6300Parser,
    Rdm6300Reader,
    SocketReader,
    datagram_credential,
    frame_uid,
)
from broker import messages
from broker.messages import AllowEntry, Allowlist, UsageEvent, credential_digest
from broker.services import free_port
from tests.agent.fake_serial import PtyMachine


def rdm_frame(uid: str, *, corrupt: bool = False) -> bytes:
    values = bytes.fromhex(uid)
    checksum = 0
    for byte in values:
        checksum ^= byte
    checksum ^= 1 if corrupt else 0
    return b"\x02" + uid.encode() + f"{checksum:02X}".encode() + b"\x03"


def test_rdm6300_frames_checksum_and_resync() -> None:
    parser = Rdm6300Parser()
    good = rdm_frame("0A00B1C2D3")
    stream = b"\xff\x00noise" + good[:5] + b"" + good[5:] + rdm_frame("0A00B1C2D4", corrupt=True) + good
    assert parser.feed(stream[:9]) == []
    assert parser.feed(stream[9:]) == ["0A00B1C2D3", "0A00B1C2D3"]
    assert parser.rejected >= 1
    assert frame_uid(b"\x02" + b"ZZ" * 6 + b"\x03") is None


def test_card_held_on_the_reader_counts_once() -> None:
    t = [0.0]
    dedupe = Deduper(2.0, clock=lambda: t[0])
    seen = []
    for step in range(10):  # the reader repeats every 0.5 s while the card stays
        t[0] = step * 0.5
        seen.append(dedupe.fresh("0A00B1C2D3"))
    t[0] = 10.0
    seen.append(dedupe.fresh("0A00B1C2D3"))
    assert seen.count(True) == 2


def test_rdm6300_reader_over_a_pty() -> None:
    got: queue.Queue[Credential] = queue.Queue()
    with PtyMachine(lambda command: []) as pty:
        reader = Rdm6300Reader(pty.path, machine="laser-1", sink=got.put)
        reader.start()
        time.sleep(0.3)
        pty.send(b"junk" + rdm_frame("0A00B1C2D3") * 3 + rdm_frame("0A00B1C2D4", corrupt=True))
        cred = got.get(timeout=5)
        time.sleep(0.3)
        reader.stop()
    assert (cred.kind, cred.secret, cred.machine) == ("badge", "0A00B1C2D3", "laser-1")
    assert got.empty()
    assert "0A00B1C2D3" not in repr(cred)


class Matrix:
    """Which keys are pressed; row pins drive the column pins of pressed keys like real contacts."""

    pressed: set[tuple[int, int]] = set()
    factory: MockFactory
    rows: list[int] = [5, 6, 13, 19]
    cols: list[int] = [12, 16, 20]


class RowPin(MockPin):
    def _set_state(self, value: bool) -> None:
        super()._set_state(value)
        row = Matrix.rows.index(int(self.info.name.replace("GPIO", "")))
        for c, col in enumerate(Matrix.cols):
            if (row, c) in Matrix.pressed:  # a closed contact: the column follows the row
                Matrix.factory.pin(col).drive_high() if value else Matrix.factory.pin(col).drive_low()


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.reset()


def test_keypad_pin_is_sent_with_hash(mock_factory: MockFactory) -> None:
    Matrix.factory, Matrix.pressed = mock_factory, set()
    for row in Matrix.rows:
        mock_factory.pin(row, pin_class=RowPin)
    got: list[Credential] = []
    keypad = MatrixKeypad(Matrix.rows, Matrix.cols, machine="sewing-1", sink=got.append, pin_factory=mock_factory)
    keys = {k: (r, c) for r, line in enumerate(("123", "456", "789", "*0#")) for c, k in enumerate(line)}
    for key in "9*482913#12#":
        Matrix.pressed = {keys[key]}
        keypad.step()
        Matrix.pressed = set()
        keypad.step()
    assert [(c.kind, c.secret) for c in got] == [("pin", "482913")]


ALICE_PIN = "482913"
SALT = "0123456789abcdef0123456789abcdef"


def allowlist(cap: int = 5000, expires: int = 4_000_000_000, machines: tuple[str, ...] = ()) -> Allowlist:
    digest = credential_digest("pin", ALICE_PIN, SALT, time_cost=1, memory_kib=64)
    entry = AllowEntry(credential=digest, kind="pin", visit="v-42", expires=expires, machines=machines)
    return Allowlist(issued=1, salt=SALT, credit_cap_cents=cap, entries=(entry,), rates_cents_per_hour={"laser-1": 1200},
                     time_cost=1, memory_kib=64)  # fmt: skip


@pytest.mark.parametrize(
    ("allowed", "pin", "spent", "accepted", "reason"),
    [
        (allowlist(), ALICE_PIN, 0, True, "on the allow-list"),
        (None, ALICE_PIN, 0, False, "no allow-list received yet"),
        (allowlist(), "000000", 0, False, "not on the allow-list"),
        (allowlist(expires=1000), ALICE_PIN, 0, False, "allow-list entry expired"),
        (allowlist(machines=("sewing-1",)), ALICE_PIN, 0, False, "not allowed on this machine"),
        (allowlist(cap=2000), ALICE_PIN, 2000, False, "offline credit cap reached"),
    ],
)
def test_offline_verdict(allowed: Allowlist | None, pin: str, spent: int, accepted: bool, reason: str) -> None:
    verdict = offline_verdict(allowed, Credential("pin", pin, "laser-1"), now_s=1_800_000_000, synced=True, spent_cents=spent)
    assert (verdict.accepted, verdict.reason) == (accepted, reason)


def test_offline_spending_uses_hourly_rates() -> None:
    assert offline_spending_cents(allowlist(), {"laser-1": 5400, "sewing-1": 3600}) == 1800


def test_interlock_is_off_until_energized(mock_factory: MockFactory) -> None:
    relay = Interlock("GPIO17", pin_factory=mock_factory)
    assert mock_factory.pin(17).state is False  # driven low from the start: machine off
    relay.energize()
    assert mock_factory.pin(17).state is True
    relay.release()
    assert mock_factory.pin(17).state is False


def offline_agent(tmp_path: Path, mock_factory: MockFactory, stored: Allowlist | None) -> Agent:
    laser = MachineConfig(id="laser-1", driver="gpio", pin="GPIO27", on_s=0, off_s=0, interlock_pin="GPIO17")
    config = AgentConfig("pi-test", MqttConfig(port=free_port()), tmp_path / "outbox.db", machines=(laser,),
                         auth_timeout_s=0.1)  # fmt: skip
    if stored:
        Outbox(config.outbox_path).put("allowlist", messages.encode(stored).decode())
    drivers = {"laser-1": CurrentSense("laser-1", pin="GPIO27", on_s=0, off_s=0, pin_factory=mock_factory)}
    return Agent(config, drivers=drivers, pin_factory=mock_factory, start_readers=False)  # type: ignore[dict-item]


def outbox_events(agent: Agent) -> list[UsageEvent]:
    return [messages.decode(UsageEvent, p) for _, p in agent.outbox.pending(0, 100)]


def test_offline_pin_unlocks_the_laser_and_badge_out_locks_it(tmp_path: Path, mock_factory: MockFactory) -> None:
    agent = offline_agent(tmp_path, mock_factory, allowlist())
    relay = mock_factory.pin(17)
    agent.tick()
    assert relay.state is False
    agent.credentials.put(Credential("pin", "111111", "laser-1"))
    agent.tick()
    assert relay.state is False
    agent.credentials.put(Credential("pin", ALICE_PIN, "laser-1"))
    agent.tick()
    assert relay.state is True
    mock_factory.pin(27).drive_high()
    agent.tick()
    agent.credentials.put(Credential("pin", ALICE_PIN, "laser-1"))  # the same PIN again: done
    agent.tick()
    assert relay.state is False
    events = outbox_events(agent)
    assert [e.type for e in events] == ["offline_auth", "offline_auth", "session_started", "session_ended"]
    refused, accepted, started, ended = (e.data for e in events)
    assert (refused.accepted, refused.reason) == (False, "not on the allow-list")
    assert (accepted.accepted, accepted.visit) == (True, "v-42")
    assert (started.auth, started.visit, started.credential) == ("offline", "v-42", accepted.credential)
    assert ended.reason == "badge_out"
    assert ALICE_PIN.encode() not in b"".join(p for _, p in agent.outbox.pending(0, 100))


def test_agent_restart_keeps_the_open_session(tmp_path: Path, mock_factory: MockFactory) -> None:
    agent = offline_agent(tmp_path, mock_factory, allowlist())
    agent.credentials.put(Credential("pin", ALICE_PIN, "laser-1"))
    agent.tick()
    session = agent.tracks["laser-1"].session
    assert session is not None
    agent.close()  # the power goes: nothing more is written
    again = offline_agent(tmp_path, mock_factory, None)
    assert again.tracks["laser-1"].session == session
    again.tick()  # a new boot, the laser idle: closed at its last known totals
    assert [e.type for e in outbox_events(again)][-1] == "session_ended"
    assert outbox_events(again)[-1].data.reason == "power_loss_recovered"


def test_keyboard_wedge_reader_needs_evdev() -> None:
    evdev = pytest.importorskip("evdev")  # absent on machines without a keyboard-wedge reader
    from agent.readers import WEDGE_KEYS

    assert all(name in evdev.ecodes.ecodes for name in WEDGE_KEYS)


def test_offline_spending_survives_a_restart(tmp_path: Path, mock_factory: MockFactory) -> None:
    """Restarting the agent must not give a visitor a fresh offline credit."""
    agent = offline_agent(tmp_path, mock_factory, allowlist(cap=100))
    agent.credentials.put(Credential("pin", ALICE_PIN, "laser-1"))
    agent.tick()
    agent.credentials.put(Credential("pin", ALICE_PIN, "laser-1"))  # badge out
    agent.tick()
    assert "v-42" in json.loads(agent.outbox.get("offline_spent") or "{}")
    # as if that session had lasted ten minutes: 10 min at 12,00 €/h is over the 1,00 € cap
    agent.outbox.put("offline_spent", json.dumps({"v-42": {"laser-1": 600.0}}))
    agent.close()
    again = offline_agent(tmp_path, mock_factory, None)
    again.credentials.put(Credential("pin", ALICE_PIN, "laser-1"))
    again.tick()
    refused = outbox_events(again)[-1]
    assert (refused.type, refused.data.accepted, refused.data.reason) == (
        "offline_auth", False, "offline credit cap reached")  # fmt: skip
    assert mock_factory.pin(17).state is False


def test_training_required_and_out_of_service_sound_unlike_any_other_refusal() -> None:
    from agent.interlock import ACCEPTED, REFUSED, refusal_pattern

    patterns = [ACCEPTED, REFUSED, refusal_pattern("not_qualified"), refusal_pattern("out_of_service")]
    assert len(set(patterns)) == 4 and refusal_pattern("wrong_pin") == refusal_pattern(None) == REFUSED


@pytest.mark.parametrize(
    ("datagram", "expected"),
    [
        (b"badge 0a1b2c3d4e\n", ("badge", "0A1B2C3D4E")),
        (b"pin 123456", ("pin", "123456")),
        (b"pin 12 34", None),
        (b"pin \xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4", None),  # Arabic-Indic digits pass str.isdigit()
        (b"badge 0A1B-2C", None),
        (b"badge " + b"A" * 33, None),
        (b"wave 0A1B2C3D4E", None),
        (b"", None),
    ],
)
def test_a_simulated_readers_datagram_is_a_badge_or_a_pin(datagram: bytes, expected: tuple[str, str] | None) -> None:
    cred = datagram_credential(datagram, "laser-1")
    assert (None if cred is None else (cred.kind, cred.secret)) == expected


def test_socket_reader_hands_over_what_fabmeter_sim_sends(tmp_path: Path) -> None:
    got: queue.Queue[Credential] = queue.Queue()
    path = tmp_path / "readers" / "laser-1.sock"
    path.parent.mkdir()
    path.write_text("left over from a crashed run")
    reader = SocketReader(str(path), machine="laser-1", sink=got.put)
    reader.start()
    deadline = time.monotonic() + 5
    while not path.is_socket() and time.monotonic() < deadline:
        time.sleep(0.02)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        for datagram in (b"junk", b"pin 482913", b"badge 0A00B1C2D3"):
            sock.sendto(datagram, str(path))
    first, second = got.get(timeout=5), got.get(timeout=5)
    reader.stop()
    assert [(c.kind, c.secret, c.machine) for c in (first, second)] == [
        ("pin", "482913", "laser-1"), ("badge", "0A00B1C2D3", "laser-1")]  # fmt: skip
    assert got.empty() and not path.exists()
