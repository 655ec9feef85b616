"""The wire contract: every message round-trips, and decoding is strict and total."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker import messages as m
from broker.errors import BadMessage

STREAM = str(uuid.UUID(int=1))
SESSION = str(uuid.UUID(int=2))


def event(type_: str, data: object, seq: int = 1) -> m.UsageEvent:
    return m.UsageEvent(
        stream=STREAM, seq=seq, machine="printer-1", type=type_, session=SESSION,
        boot="b0c1", mono_ns=123, wall_ns=1_700_000_000_000_000_000, wall_synced=True, data=data,
    )  # fmt: skip


EXAMPLES = [
    m.AgentStatus(online=True, bdseq=3, version="0.1.0", machines=("printer-1", "laser-1")),
    m.MachineState(
        machine="printer-1", state="printing", wall_ns=5, job="benchy.gcode", progress=42.5,
        elapsed_s=600, remaining_s=900, temperatures={"tool0": 210.0, "bed": 60.0},
        session=SESSION, user="Camille",
    ),  # fmt: skip
    m.MachineState(machine="sewing-1", state="idle", wall_ns=0),
    event("session_started", m.SessionStarted(auth="online", visit="v-12")),
    event("session_checkpoint", m.SessionTotals(session_s=60, busy_s=55, job_s=50)),
    event("job_started", m.JobStarted(job="benchy.gcode", estimate_mm=1234.5)),
    event(
        "job_ended",
        m.JobEnded(job="benchy.gcode", outcome="cancelled", job_s=300, progress=25.0,
                   filament_mm=308.6, filament_source="estimate", material="PLA"),
    ),  # fmt: skip
    event("session_ended", m.SessionEnded(reason="job_end", session_s=1, busy_s=1, job_s=1)),
    event("offline_auth", m.OfflineAuth(kind="pin", credential="ab12", accepted=False, reason="cap")),
    m.Ack(stream=STREAM, upto=41),
    m.AuthRequest(kind="badge", credential="0A1B2C3D4E", machine="laser-1", session=SESSION),
    m.AuthResponse(allow=True, reason="ok", session=SESSION, visit="v-12",
                   display_name="Camille", price_summary="0,50 €/min"),  # fmt: skip
    m.Allowlist(
        issued=1, salt="s4lt-s4lt-s4lt-s4lt", credit_cap_cents=2000, rates_cents_per_hour={"laser-1": 3000},
        entries=(m.AllowEntry(credential="d1", kind="pin", visit="v-1", expires=99,
                              machines=("laser-1",)),),  # fmt: skip
    ),
    m.Command(cmd="resend", stream=STREAM, first=3, last=9),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda x: type(x).__name__)
def test_every_message_round_trips(message: object) -> None:
    raw = m.encode(message)
    assert json.loads(raw)["v"] == 1
    assert m.decode(type(message), raw) == message


def test_every_topic_kind_has_a_message_example() -> None:
    assert set(m.MESSAGE_FOR_TOPIC.values()) <= {type(x) for x in EXAMPLES}
    assert {e.type for e in EXAMPLES if isinstance(e, m.UsageEvent)} == set(m.EVENT_TYPES)


def mutate(message: object, **changes: object) -> bytes:
    body = m.to_dict(message)
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (mutate(EXAMPLES[9], v=2), "'v' must be 1"),
        (mutate(EXAMPLES[9], v=True), "'v' must be 1"),
        (mutate(EXAMPLES[9], upto="4"), "Ack.upto: must be an integer"),
        (mutate(EXAMPLES[9], upto=-1), "Ack.upto: -1 must not be negative"),
        (mutate(EXAMPLES[9], upto=2**70), "does not fit in 64 bits"),
        (mutate(EXAMPLES[9], stream="nope"), "Ack.stream: 'nope' is not a lowercase UUID"),
        (mutate(EXAMPLES[9], extra=1), "unknown field 'extra'"),
        (b'{"v": 1, "stream": "' + STREAM.encode() + b'"}', "Ack.upto: missing"),
        (b'{"v": 1, "upto": NaN}', "not UTF-8 JSON"),
    ],
)
def test_bad_ack_is_refused_with_a_reason(raw: bytes, says: str) -> None:
    with pytest.raises(BadMessage, match=says.replace("(", r"\(")):
        m.decode(m.Ack, raw)


def test_event_data_is_checked_against_its_type() -> None:
    raw = mutate(EXAMPLES[6], data={"job": "x", "outcome": "exploded", "job_s": 1})
    with pytest.raises(BadMessage, match=r"UsageEvent.data.outcome: 'exploded' must be one of"):
        m.decode(m.UsageEvent, raw)


def test_machine_ids_are_checked() -> None:
    with pytest.raises(BadMessage, match="UsageEvent.machine: 'Printer 1' is not an id"):
        m.decode(m.UsageEvent, mutate(EXAMPLES[4], machine="Printer 1"))


def test_bool_is_not_an_integer_nor_a_number() -> None:
    with pytest.raises(BadMessage, match="must be an integer"):
        m.decode(m.Ack, mutate(EXAMPLES[9], upto=True))
    with pytest.raises(BadMessage, match="finite number"):
        m.decode(m.MachineState, mutate(EXAMPLES[2], progress=False))


def test_credential_digest_depends_on_salt_kind_and_cost() -> None:
    a = m.credential_digest("pin", "123456", "salt-a-16-bytes!")
    assert a == m.credential_digest("pin", "123456", "salt-a-16-bytes!")
    assert a != m.credential_digest("pin", "123456", "salt-b-16-bytes!")
    assert a != m.credential_digest("badge", "123456", "salt-a-16-bytes!")
    assert a != m.credential_digest("pin", "123456", "salt-a-16-bytes!", time_cost=3)
    assert "123456" not in a and len(a) == 64


def test_a_list_never_asks_for_more_argon2_than_a_pi_can_give() -> None:
    lst = m.Allowlist(issued=1, salt="0123456789abcdef", credit_cap_cents=0)
    assert (lst.time_cost, lst.memory_kib) == (2, 8_192)
    with pytest.raises(BadMessage, match="memory_kib"):
        m.decode(m.Allowlist, mutate(lst, memory_kib=1_048_576))
    with pytest.raises(BadMessage, match="time_cost"):
        m.decode(m.Allowlist, mutate(lst, time_cost=1000))
    with pytest.raises(BadMessage, match="salt"):
        m.decode(m.Allowlist, mutate(lst, salt="short"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=6),
    max_leaves=20,
)


def _nearly_valid() -> st.SearchStrategy[bytes]:
    """A valid message with one field replaced by arbitrary JSON, or deleted."""

    def build(example: object, key: str, value: object, drop: bool) -> bytes:
        body = m.to_dict(example)
        keys = sorted(body)
        name = keys[hash(key) % len(keys)]
        if drop:
            body.pop(name)
        else:
            body[name] = value
        return json.dumps(body).encode()

    return st.builds(build, st.sampled_from(EXAMPLES), st.text(), json_values, st.booleans())


ALL_CLASSES = sorted(set(m.MESSAGE_FOR_TOPIC.values()), key=lambda c: c.__name__)


def _decodes_or_refuses(raw: bytes) -> None:
    for cls in ALL_CLASSES:
        try:
            message = m.decode(cls, raw)
        except BadMessage:
            continue
        # anything accepted is a real message that survives a round trip
        assert isinstance(message, cls)
        assert m.decode(cls, m.encode(message)) == message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_message_or_bad_message(raw: bytes) -> None:
    _decodes_or_refuses(raw)


@settings(max_examples=300, deadline=None)
@given(json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_json_gives_a_message_or_bad_message(raw: bytes) -> None:
    _decodes_or_refuses(raw)


@settings(max_examples=500, deadline=None)
@given(_nearly_valid())
def test_nearly_valid_messages_give_a_message_or_bad_message(raw: bytes) -> None:
    _decodes_or_refuses(raw)
