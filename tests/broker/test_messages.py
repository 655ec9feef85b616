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
                              machines=("laser-1",), qualified={"laser": 120}),),  # fmt: skip
        requires={"laser-1": "laser"}, qualification_names={"laser": "découpe laser"},
    ),
    m.Command(cmd="resend", stream=STREAM, first=3, last=9),
    event("job_corrected", m.JobCorrected(job_key="local:big.gcode@1764140000#1764150000.1", job="big.gcode",
                                          filament_mm=5120.4, filament_source="estimate", material="pla")),
    m.ServiceOrder(machine="laser-1", out_of_service=True, reason="tube à changer", since=1_700_000_000),
    m.ServiceOrder(machine="laser-1", out_of_service=False),
    m.MachineState(machine="laser-1", state="idle", wall_ns=0,
                   refusal=m.Refusal(code="not_qualified", message="formation requise : découpe laser", at=9)),
    m.AuthResponse(allow=False, reason="formation requise : découpe laser", session=SESSION, code="not_qualified"),
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


# -- bounds: strings, sizes and numbers ------------------------------------------------------

STATE, STARTED, JOB_ENDED, ENDED = EXAMPLES[1], EXAMPLES[3], EXAMPLES[6], EXAMPLES[7]
CORRECTED = EXAMPLES[14]


def mutate_data(example: m.UsageEvent, **changes: object) -> bytes:
    body = m.to_dict(example)
    body["data"] = body["data"] | changes
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("cls", "raw", "says"),
    [
        (m.MachineState, mutate(STATE, job="\ud800.gcode"), "MachineState.job: control character or lone surrogate"),
        (m.MachineState, mutate(STATE, user="Cam\x1b[2Jille"), "MachineState.user: control character"),
        (m.MachineState, mutate(STATE, user="\u202eelliC"), "MachineState.user: control character"),
        (m.MachineState, mutate(STATE, job="x" * 1_000_000), "more than 65536"),
        (m.MachineState, mutate(STATE, job="x" * 501), "MachineState.job: 'xxx.* must be 0 to 500 characters"),
        (m.MachineState, mutate(STATE, remaining_s=2**62), "MachineState.remaining_s: .* must be between 0 and"),
        (m.MachineState, mutate(STATE, temperatures={f"t{i}": 1.0 for i in range(17)}), "17 items"),
        (m.MachineState, mutate(STATE, temperatures={"tool0": 1e308}), "between -300 and 3000"),
        (m.MachineState, mutate(STATE, progress=2**70), "out of range"),
        (m.AuthRequest, mutate(EXAMPLES[10], credential="12\ud83456"), "AuthRequest.credential: control character"),
        (m.UsageEvent, mutate_data(ENDED, session_s=9223372036854775807), "data.session_s: .* between 0 and"),
        (m.UsageEvent, mutate_data(ENDED, session_s=m.YEAR_S + 1), "data.session_s"),
        (m.UsageEvent, mutate_data(JOB_ENDED, filament_mm=1e308), r"data.filament_mm: .* \(10 km\)"),
        (m.UsageEvent, mutate_data(JOB_ENDED, material="x" * 41), "data.material"),
        (m.UsageEvent, mutate_data(CORRECTED, job_key="k" * 501), "data.job_key: .* 1 to 500 characters"),
        (m.UsageEvent, mutate_data(CORRECTED, job_key=""), "data.job_key"),
        (m.UsageEvent, mutate_data(CORRECTED, filament_source="guess"), "data.filament_source: .* one of"),
        (m.UsageEvent, mutate_data(CORRECTED, filament_mm=None), "data.filament_mm"),
        (m.UsageEvent, mutate_data(STARTED, credential="d" * 129), "data.credential"),
        (m.UsageEvent, mutate(STARTED, seq=2**31), "UsageEvent.seq"),
        (m.AgentStatus, mutate(EXAMPLES[0], machines=["a"] * 65), "65 items"),
        (m.Allowlist, mutate(EXAMPLES[12], entries=[{}] * 1001), "1001 items, more than 1000"),
    ],
)
def test_out_of_bounds_values_are_refused_with_a_reason(cls: type, raw: bytes, says: str) -> None:
    with pytest.raises(BadMessage, match=says):
        m.decode(cls, raw)


def test_a_refused_megabyte_is_not_copied_into_the_reason() -> None:
    body = m.to_dict(STATE) | {"job": "\x00" + "x" * 60_000}
    with pytest.raises(BadMessage) as refused:
        m.decode(m.MachineState, json.dumps(body).encode())
    assert len(str(refused.value)) < 200


# (field, the last value accepted, the first refused) — each range fits the column it is stored in
RANGES = [
    (ENDED, "session_s", m.YEAR_S, m.YEAR_S + 1),
    (ENDED, "job_s", m.YEAR_S, m.YEAR_S + 1),
    (JOB_ENDED, "filament_mm", 10_000_000, 10_000_000.5),
    (EXAMPLES[5], "estimate_mm", 10_000_000, 10_000_001),
    (JOB_ENDED, "progress", 100, 100.001),
    (CORRECTED, "filament_mm", 10_000_000, 10_000_000.5),
]


@pytest.mark.parametrize(("example", "name", "last", "first_bad"), RANGES, ids=lambda x: str(x)[:20])
def test_event_numbers_at_and_past_their_range(example: m.UsageEvent, name: str, last: float, first_bad: float) -> None:
    assert getattr(m.decode(m.UsageEvent, mutate_data(example, **{name: last})).data, name) == last
    for bad in (first_bad, -1, 2**63 - 1, 2**63, 1e308):
        with pytest.raises(BadMessage, match=f"data.{name}"):
            m.decode(m.UsageEvent, mutate_data(example, **{name: bad}))


@pytest.mark.parametrize(
    ("example", "name", "last", "first_bad"),
    [
        (STATE, "remaining_s", m.YEAR_S, m.YEAR_S + 1),
        (STATE, "elapsed_s", m.YEAR_S, m.YEAR_S + 1),
        (EXAMPLES[9], "upto", 2**31 - 1, 2**31),
        (EXAMPLES[12], "credit_cap_cents", 2**31 - 1, 2**31),
        (EXAMPLES[12], "issued", m.UNIX_S_MAX, m.UNIX_S_MAX + 1),
        (EXAMPLES[13], "last", 2**31 - 1, 2**31),
        (EXAMPLES[4], "seq", 2**31 - 1, 2**31),
    ],
    ids=lambda x: str(x)[:20],
)
def test_numbers_at_and_past_their_range(example: object, name: str, last: int, first_bad: int) -> None:
    assert getattr(m.decode(type(example), mutate(example, **{name: last})), name) == last
    for bad in (first_bad, -1, 2**63, 1e308):
        with pytest.raises(BadMessage, match=name):
            m.decode(type(example), mutate(example, **{name: bad}))


def test_a_payload_over_the_size_limit_is_refused_before_parsing() -> None:
    raw = b'{"v": 1, "stream": "' + b" " * m.MAX_PAYLOAD_BYTES + b'"}'
    with pytest.raises(BadMessage, match="more than 65536"):
        m.decode(m.Ack, raw)


# every character, lone surrogates and controls included, and strings up to a megabyte
hostile_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.sampled_from(["\ud800", "\udfff.gcode", "a\x00b", "\x1b[2J", "\u202e", "\x85", "x" * 1_000_000]),
)
hostile_numbers = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, m.YEAR_S, m.YEAR_S + 1, 10**7, 10**7 + 1, 1e308, -1e308]),
    st.floats(allow_nan=False, allow_infinity=False),
)


def _strings_and_numbers(message: object) -> list[object]:
    found: list[object] = []
    values = list(m.to_dict(message).values())
    while values:
        value = values.pop()
        if isinstance(value, dict):
            values += [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple):
            values += list(value)
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            found.append(value)
    return found


def _accepted_is_bounded(raw: bytes) -> None:
    for cls in ALL_CLASSES:
        try:
            message = m.decode(cls, raw)
        except BadMessage:
            continue
        assert m.decode(cls, m.encode(message)) == message
        for value in _strings_and_numbers(message):
            if isinstance(value, str):
                assert len(value) <= 500 and not m._UNSHOWABLE.search(value), value[:40]
            else:
                assert -(2**63) <= value < 2**63, value


def _one_field(example: object, key: str, value: object, in_data: bool) -> bytes:
    body = m.to_dict(example)
    target = body["data"] if in_data and isinstance(body.get("data"), dict) else body
    names = sorted(k for k in target if k != "v")
    target[names[hash(key) % len(names)]] = value
    return json.dumps(body).encode()


@settings(max_examples=400, deadline=None)
@given(st.builds(_one_field, st.sampled_from(EXAMPLES), st.text(max_size=4), hostile_text, st.booleans()))
def test_hostile_strings_in_any_field_give_a_bounded_message_or_bad_message(raw: bytes) -> None:
    _accepted_is_bounded(raw)


@settings(max_examples=400, deadline=None)
@given(st.builds(_one_field, st.sampled_from(EXAMPLES), st.text(max_size=4), hostile_numbers, st.booleans()))
def test_numbers_at_and_past_every_range_give_a_bounded_message_or_bad_message(raw: bytes) -> None:
    _accepted_is_bounded(raw)


@pytest.mark.parametrize(
    ("cls", "body", "field"),
    [
        (m.AuthResponse, {"allow": False, "reason": "x", "session": SESSION, "code": "because"}, "code"),
        (m.ServiceOrder, {"machine": "laser-1", "out_of_service": "yes"}, "out_of_service"),
        (m.ServiceOrder, {"machine": "Laser 1", "out_of_service": True}, "machine"),
        (m.MachineState, {"machine": "laser-1", "state": "idle", "wall_ns": 0,
                          "refusal": {"code": "not_qualified", "message": "x" * 201, "at": 1}}, "message"),
        (m.Allowlist, {"issued": 1, "salt": "s" * 16, "credit_cap_cents": 0, "requires": {"laser-1": "Laser!"}},
         "requires"),
    ],
)  # fmt: skip
def test_refusals_service_orders_and_qualifications_are_decoded_strictly(cls: type, body: dict, field: str) -> None:
    with pytest.raises(BadMessage, match=field):
        m.decode(cls, json.dumps({"v": 1, **body}))
