"""Payloads of the wire contract: one frozen dataclass per message, JSON with ``"v": 1``.

    raw = encode(Ack(stream="6f0c…", upto=41))
    decode(Ack, raw)            # Ack(stream='6f0c…', upto=41), or BadMessage saying what is wrong

Decoding is strict, total and bounded: any bytes give either the message or ``BadMessage``.
Unknown fields, a missing or mistyped field, a bad id, UUID or enum value are all refused with
the name of the field. So is a payload over ``MAX_PAYLOAD_BYTES``, a string with a lone
surrogate or a control character or longer than its field allows, a list or object with too many
items, and a number outside its field's range: every range fits the ledger column it ends up in
(PostgreSQL's 32-bit ``INTEGER`` where it lands in one) and makes sense (durations up to a year,
filament up to 10 km). Field checks live in each field's metadata (``check=``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

import argon2.low_level

from broker.errors import BadMessage
from broker.topics import is_id

VERSION = 1
M = TypeVar("M")

MAX_PAYLOAD_BYTES = 64 * 1024  # also the broker's message_size_limit (broker.registry)
MAX_STRING = 4096  # no string field is longer, whatever its own check says
MAX_ITEMS = 1000  # no list or object holds more items
YEAR_S = 366 * 24 * 3600  # the longest duration a message may carry
MAX_FILAMENT_MM = 10_000_000.0  # 10 km of filament
INT32 = 2**31 - 1  # PostgreSQL INTEGER: seqs, cents and durations are stored in one
UNIX_S_MAX = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime can hold

# -- field checks ---------------------------------------------------------------------------


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid(value: Any) -> str | None:
    # exactly the strings str(uuid.UUID(...)) produces
    return None if _UUID.fullmatch(value) else "is not a lowercase UUID"


def _ident(value: Any) -> str | None:
    return None if is_id(value) else "is not an id (lowercase letters, digits, hyphens)"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must not be negative"


def _between(low: float, high: float, unit: str = "") -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value < 0 <= low:
            return "must not be negative"
        return None if low <= value <= high else f"must be between {_number(low)} and {_number(high)}{unit}"

    return check


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


_positive = _between(1, INT32)  # seqs: INTEGER columns
_count = _between(0, INT32)
_percent = _between(0, 100)
_duration = _between(0, YEAR_S, " s (a year)")
_filament = _between(0, MAX_FILAMENT_MM, " mm (10 km)")
_unix_s = _between(0, UNIX_S_MAX)
_temperature = _between(-300, 3000, " °C")


def _one_of(*allowed: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}"

    return check


def _text_of(most: int, least: int = 1) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if least <= len(value) <= most else f"must be {least} to {most} characters"

    return check


_text = _text_of(500)
_label = _text_of(200, 0)  # a name shown on the board or a receipt
_digest = _text_of(128)  # an allow-list digest: the ledger's credential columns are String(128)


def _each(check: Callable[[Any], str | None], most: int = MAX_ITEMS) -> Callable[[Any], str | None]:
    def each(values: Any) -> str | None:
        if len(values) > most:
            return f"has {len(values)} items, more than {most}"
        for value in values.values() if isinstance(values, dict) else values:
            problem = check(value)
            if problem:
                return f"has an item {_show(value)} that {problem}"
        return None

    return each


def _show(value: Any, most: int = 60) -> str:
    """``value`` as an error message shows it: repr, cut (a refused string may be a megabyte)."""
    text = repr(value)
    return text if len(text) <= most else text[: most - 3] + "..."


def _c(check: Callable[[Any], str | None]) -> dict[str, Any]:
    return {"check": check}


# -- messages -------------------------------------------------------------------------------

MACHINE_STATES = ("offline", "idle", "busy", "printing", "paused", "error")
EVENT_TYPES = (
    "session_started",
    "session_checkpoint",
    "job_started",
    "job_ended",
    "job_corrected",
    "session_ended",
    "offline_auth",
)
JOB_OUTCOMES = ("completed", "cancelled", "failed")
END_REASONS = ("badge_out", "job_end", "idle_timeout", "power_loss_recovered", "shutdown", "out_of_service")
MATERIAL_SOURCES = ("estimate", "measured")
TIME_SOURCES = ("agent", "controller")  # job_s counted by the agent, or the controller's own figure
CREDENTIAL_KINDS = ("badge", "pin")
# why billing (or the agent, offline) refused a badge or PIN; the reason is the text to show
REFUSAL_CODES = (
    "unknown_machine", "not_yours", "unknown_credential", "wrong_pin", "pin_wait", "locked", "visit_closed",
    "not_open", "not_qualified", "out_of_service", "in_use", "not_listed", "expired", "credit_cap",
)  # fmt: skip


@dataclass(frozen=True)
class Refusal:
    """The last badge or PIN a machine refused: the message shown, when (unix seconds), why."""

    message: str = field(metadata=_c(_text_of(200)))
    at: int = field(metadata=_c(_between(0, UNIX_S_MAX)))
    code: str | None = field(default=None, metadata=_c(_one_of(*REFUSAL_CODES)))


@dataclass(frozen=True)
class AgentStatus:
    """Retained on ``agent/<id>/status``; the Last Will is the same with ``online=False``."""

    online: bool
    bdseq: int = field(metadata=_c(_non_negative))
    version: str = field(metadata=_c(_text_of(40)))
    machines: tuple[str, ...] = field(metadata=_c(_each(_ident, 64)))


@dataclass(frozen=True)
class MachineState:
    """Retained live snapshot on ``machine/<id>/state``; ``session`` is the open session's UUID."""

    machine: str = field(metadata=_c(_ident))
    state: str = field(metadata=_c(_one_of(*MACHINE_STATES)))
    wall_ns: int = field(metadata=_c(_non_negative))
    job: str | None = field(default=None, metadata=_c(_text_of(500, 0)))
    progress: float | None = field(default=None, metadata=_c(_percent))
    elapsed_s: int | None = field(default=None, metadata=_c(_duration))
    remaining_s: int | None = field(default=None, metadata=_c(_duration))
    temperatures: dict[str, float] = field(default_factory=dict, metadata=_c(_each(_temperature, 16)))
    session: str | None = field(default=None, metadata=_c(_uuid))
    user: str | None = field(default=None, metadata=_c(_label))
    detail: str | None = field(default=None, metadata=_c(_text_of(500, 0)))
    refusal: Refusal | None = None  # the last refusal at this machine, until someone is accepted


@dataclass(frozen=True)
class SessionStarted:
    """A machine was unlocked (``auth``: online, offline or none — a job started without a badge)."""

    auth: str = field(metadata=_c(_one_of("online", "offline", "none")))
    visit: str | None = field(default=None, metadata=_c(_text_of(20)))
    credential: str | None = field(default=None, metadata=_c(_digest))  # allow-list digest, never the PIN


@dataclass(frozen=True)
class SessionTotals:
    """Cumulative seconds of an open session, from the monotonic clock of one boot."""

    session_s: int = field(metadata=_c(_duration))
    busy_s: int = field(metadata=_c(_duration))
    job_s: int = field(metadata=_c(_duration))


@dataclass(frozen=True)
class JobStarted:
    job: str = field(metadata=_c(_text))
    estimate_mm: float | None = field(default=None, metadata=_c(_filament))


@dataclass(frozen=True)
class JobEnded:
    """``filament_mm`` is what the job used, from ``filament_source`` (a prorated estimate or measured)."""

    job: str = field(metadata=_c(_text))
    outcome: str = field(metadata=_c(_one_of(*JOB_OUTCOMES)))
    job_s: int = field(metadata=_c(_duration))
    progress: float | None = field(default=None, metadata=_c(_percent))
    filament_mm: float | None = field(default=None, metadata=_c(_filament))
    filament_source: str | None = field(default=None, metadata=_c(_one_of(*MATERIAL_SOURCES)))
    material: str | None = field(default=None, metadata=_c(_text_of(40)))
    time_source: str | None = field(default=None, metadata=_c(_one_of(*TIME_SOURCES)))


@dataclass(frozen=True)
class JobCorrected:
    """Filament a ``job_ended`` of the same session lacked, known only later (OctoPrint analyses a file
    only once idle): ``filament_mm`` is what the run ``job_key`` used, from ``filament_source``."""

    job_key: str = field(metadata=_c(_text))
    job: str = field(metadata=_c(_text))
    filament_mm: float = field(metadata=_c(_filament))
    filament_source: str = field(metadata=_c(_one_of(*MATERIAL_SOURCES)))
    material: str | None = field(default=None, metadata=_c(_text_of(40)))


@dataclass(frozen=True)
class SessionEnded:
    reason: str = field(metadata=_c(_one_of(*END_REASONS)))
    session_s: int = field(metadata=_c(_duration))
    busy_s: int = field(metadata=_c(_duration))
    job_s: int = field(metadata=_c(_duration))


@dataclass(frozen=True)
class OfflineAuth:
    """The agent decided alone from its allow-list, while billing did not answer."""

    kind: str = field(metadata=_c(_one_of(*CREDENTIAL_KINDS)))
    credential: str = field(metadata=_c(_digest))  # the allow-list digest
    accepted: bool
    reason: str = field(metadata=_c(_text))
    visit: str | None = field(default=None, metadata=_c(_text_of(20)))


EventData = SessionStarted | SessionTotals | JobStarted | JobEnded | JobCorrected | SessionEnded | OfflineAuth
DATA_TYPES: dict[str, type[Any]] = {
    "session_started": SessionStarted,
    "session_checkpoint": SessionTotals,
    "job_started": JobStarted,
    "job_ended": JobEnded,
    "job_corrected": JobCorrected,
    "session_ended": SessionEnded,
    "offline_auth": OfflineAuth,
}


@dataclass(frozen=True)
class UsageEvent:
    """One durable event from an agent's outbox, unique by (agent, stream, seq)."""

    stream: str = field(metadata=_c(_uuid))
    seq: int = field(metadata=_c(_positive))
    machine: str = field(metadata=_c(_ident))
    type: str = field(metadata=_c(_one_of(*EVENT_TYPES)))
    session: str = field(metadata=_c(_uuid))
    boot: str = field(metadata=_c(_text_of(64)))
    mono_ns: int = field(metadata=_c(_non_negative))
    wall_ns: int = field(metadata=_c(_non_negative))
    wall_synced: bool
    data: Any  # one of EventData, chosen by ``type``


@dataclass(frozen=True)
class Ack:
    """Retained: every event of ``stream`` up to seq ``upto`` is committed in billing."""

    stream: str = field(metadata=_c(_uuid))
    upto: int = field(metadata=_c(_count))


@dataclass(frozen=True)
class AuthRequest:
    """A badge UID or a PIN presented at ``machine``; ``session`` is the UUID the agent will use."""

    kind: str = field(metadata=_c(_one_of(*CREDENTIAL_KINDS)))
    credential: str = field(metadata=_c(_text_of(64)))  # a badge UID or a PIN
    machine: str = field(metadata=_c(_ident))
    session: str = field(metadata=_c(_uuid))


@dataclass(frozen=True)
class AuthResponse:
    allow: bool
    reason: str = field(metadata=_c(_text))
    session: str = field(metadata=_c(_uuid))
    visit: str | None = field(default=None, metadata=_c(_text_of(20)))
    display_name: str | None = field(default=None, metadata=_c(_label))
    price_summary: str | None = field(default=None, metadata=_c(_label))
    code: str | None = field(default=None, metadata=_c(_one_of(*REFUSAL_CODES)))  # set on a refusal


@dataclass(frozen=True)
class AllowEntry:
    """A credential the agent may accept offline: its digest (see ``credential_digest``).

    No name: a list copied off a stolen SD card says which visit, never who.
    """

    credential: str = field(metadata=_c(_digest))
    kind: str = field(metadata=_c(_one_of(*CREDENTIAL_KINDS)))
    visit: str = field(metadata=_c(_text_of(20)))
    expires: int = field(metadata=_c(_unix_s))  # unix seconds
    machines: tuple[str, ...] = field(default=(), metadata=_c(_each(_ident, 64)))
    # qualification code -> until when (unix seconds) the entry's person holds it
    qualified: dict[str, int] = field(default_factory=dict, metadata=_c(_each(_unix_s, 64)))


def _salt(value: Any) -> str | None:
    return None if 16 <= len(value) <= 64 else "must be 16 to 64 characters (Argon2 needs 8 bytes or more)"


def _kdf_time(value: Any) -> str | None:
    return None if 1 <= value <= KDF_MAX_TIME_COST else f"must be 1 to {KDF_MAX_TIME_COST}"


def _kdf_memory(value: Any) -> str | None:
    # bounded so that a list cannot make a 512 MB Pi swap or take seconds per PIN
    return None if 8 <= value <= KDF_MAX_MEMORY_KIB else f"must be 8 to {KDF_MAX_MEMORY_KIB} KiB"


@dataclass(frozen=True)
class Allowlist:
    """Retained per agent: what it may accept while billing is unreachable.

    ``salt`` is drawn afresh for every list; the digests are Argon2id with the list's own cost
    (``time_cost`` passes over ``memory_kib``), so a table built against one list is no use
    against the next one.
    """

    issued: int = field(metadata=_c(_unix_s))  # unix seconds
    salt: str = field(metadata=_c(_salt))
    credit_cap_cents: int = field(metadata=_c(_count))
    entries: tuple[AllowEntry, ...] = ()
    time_cost: int = field(default=2, metadata=_c(_kdf_time))
    memory_kib: int = field(default=8_192, metadata=_c(_kdf_memory))
    # highest hourly price per machine, so the agent can tell when offline use reaches the cap
    rates_cents_per_hour: dict[str, int] = field(default_factory=dict, metadata=_c(_each(_count, 64)))
    # machine -> the qualification it needs, and each qualification's name for the refusal message
    requires: dict[str, str] = field(default_factory=dict, metadata=_c(_each(_ident, 64)))
    qualification_names: dict[str, str] = field(default_factory=dict, metadata=_c(_each(_text_of(120), 64)))


@dataclass(frozen=True)
class ServiceOrder:
    """Retained on ``machine/<id>/service``: whether staff took the machine out of service, and why.

    The agent refuses new sessions while it is out, and releases the interlock at the next idle.
    """

    machine: str = field(metadata=_c(_ident))
    out_of_service: bool
    reason: str = field(default="", metadata=_c(_text_of(300, 0)))
    since: int = field(default=0, metadata=_c(_unix_s))  # unix seconds; 0 while in service


@dataclass(frozen=True)
class Command:
    """``resend``: publish again events ``first``..``last`` of ``stream`` from the outbox."""

    cmd: str = field(metadata=_c(_one_of("resend")))
    stream: str = field(metadata=_c(_uuid))
    first: int = field(metadata=_c(_positive))
    last: int = field(metadata=_c(_positive))


MESSAGE_FOR_TOPIC: dict[str, type[Any]] = {
    "status": AgentStatus,
    "state": MachineState,
    "events": UsageEvent,
    "ack": Ack,
    "auth_req": AuthRequest,
    "auth_resp": AuthResponse,
    "allowlist": Allowlist,
    "cmd": Command,
    "service": ServiceOrder,
}

KDF_MAX_TIME_COST = 10
KDF_MAX_MEMORY_KIB = 65_536


def credential_digest(kind: str, secret: str, salt: str, *, time_cost: int = 2, memory_kib: int = 8_192) -> str:
    """How an allow-list names a credential without carrying it: Argon2id under the list's salt."""
    raw = argon2.low_level.hash_secret_raw(
        f"{kind}:{secret}".encode(), salt.encode(), time_cost=time_cost, memory_cost=memory_kib,
        parallelism=1, hash_len=32, type=argon2.low_level.Type.ID,
    )  # fmt: skip
    return raw.hex()


def list_digest(allowlist: Allowlist, kind: str, secret: str) -> str:
    """``credential_digest`` with this list's salt and cost."""
    return credential_digest(kind, secret, allowlist.salt, time_cost=allowlist.time_cost,
                             memory_kib=allowlist.memory_kib)  # fmt: skip


# -- encoding -------------------------------------------------------------------------------


def to_dict(message: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"v": VERSION}
    body.update(dataclasses.asdict(message))
    return body


def encode(message: Any) -> bytes:
    return json.dumps(to_dict(message), separators=(",", ":"), ensure_ascii=False).encode()


def decode(cls: type[M], payload: bytes | bytearray | str) -> M:
    """Parse ``payload`` as a ``cls`` message, or raise BadMessage naming what is wrong."""
    if len(payload) > MAX_PAYLOAD_BYTES:  # a str's length counts characters: at most 4 bytes each
        raise BadMessage(f"{cls.__name__}: payload of {len(payload)} bytes, more than {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes | bytearray) else payload
        body = _JSON.decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise BadMessage(f"{cls.__name__}: payload is not UTF-8 JSON ({err})") from err
    if not isinstance(body, dict):
        raise BadMessage(f"{cls.__name__}: payload must be a JSON object")
    version = body.pop("v", None)
    if version != VERSION or isinstance(version, bool):
        raise BadMessage(f"{cls.__name__}: field 'v' must be {VERSION}, got {version!r}")
    return _build(cls, body, cls.__name__)


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


_JSON = json.JSONDecoder(parse_constant=_no_constants)  # one decoder: json.loads(…, kw) makes one per call


# a converter gets the value, and where it is (message path and field name, joined only to
# report an error or to go deeper: most messages are valid, and building paths is not free)
Converter = Callable[[Any, str, str], Any]


@dataclass(frozen=True)
class _Field:
    """How to decode one field: worked out once per class, not once per message."""

    name: str
    convert: Converter
    check: Callable[[Any], str | None] | None
    required: bool


_PLANS: dict[type[Any], tuple[tuple[_Field, ...], frozenset[str]]] = {}


def _plan(cls: type[Any]) -> tuple[tuple[_Field, ...], frozenset[str]]:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        fields = tuple(
            _Field(
                f.name,
                _converter(hints[f.name]),
                f.metadata.get("check"),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)
        )
        plan = _PLANS[cls] = (fields, frozenset(f.name for f in fields))
    return plan


def _build(cls: type[M], body: Mapping[str, Any], where: str) -> M:
    fields, names = _plan(cls)
    if not names.issuperset(body):
        raise BadMessage(f"{where}: unknown field {sorted(set(body) - names)[0]!r}")
    values: dict[str, Any] = {}
    for spec in fields:
        name = spec.name
        if name not in body:
            if spec.required:
                raise BadMessage(f"{where}.{name}: missing")
            continue
        if name == "data" and cls is UsageEvent:
            values[name] = _event_data(body, f"{where}.{name}")
            continue
        value = values[name] = spec.convert(body[name], where, name)
        problem = spec.check(value) if spec.check is not None and value is not None else None
        if problem:
            raise BadMessage(f"{where}.{name}: {_show(value)} {problem}")
    return cls(**values)


def _event_data(body: Mapping[str, Any], path: str) -> Any:
    kind = body.get("type")
    if kind not in DATA_TYPES:
        raise BadMessage(f"{path}: cannot decode data for event type {kind!r}")
    if not isinstance(body["data"], dict):
        raise BadMessage(f"{path}: must be an object")
    return _build(DATA_TYPES[kind], body["data"], path)


def _converter(hint: Any) -> Converter:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = _converter([a for a in typing.get_args(hint) if a is not type(None)][0])
        return lambda value, where, name: None if value is None else inner(value, where, name)
    if origin is tuple:
        return _sequence(_converter(typing.get_args(hint)[0]))
    if origin is dict:
        return _mapping(_converter(typing.get_args(hint)[1]))
    if dataclasses.is_dataclass(hint):
        return _nested(typing.cast(type[Any], hint))
    if hint is Any:  # UsageEvent.data: decoded by its event type in _event_data
        return lambda value, where, name: value
    scalar = _SCALAR_CONVERTERS.get(hint)
    if scalar is None:  # pragma: no cover - a message class with an unsupported field type
        raise TypeError(f"unsupported field type {hint!r}")
    return scalar


def _sequence(item: Converter) -> Converter:
    def convert(value: Any, where: str, name: str) -> Any:
        if not isinstance(value, list):
            raise BadMessage(f"{where}.{name}: must be a list")
        if len(value) > MAX_ITEMS:
            raise BadMessage(f"{where}.{name}: {len(value)} items, more than {MAX_ITEMS}")
        return tuple(item(v, where, f"{name}[{i}]") for i, v in enumerate(value))

    return convert


def _mapping(item: Converter) -> Converter:
    def convert(value: Any, where: str, name: str) -> Any:
        if not isinstance(value, dict):
            raise BadMessage(f"{where}.{name}: must be an object")
        if len(value) > MAX_ITEMS:
            raise BadMessage(f"{where}.{name}: {len(value)} items, more than {MAX_ITEMS}")
        out = {}
        for key, inner in value.items():
            key = _key(key, where, name)
            out[key] = item(inner, where, f"{name}.{key}")
        return out

    return convert


def _nested(cls: type[Any]) -> Converter:
    def convert(value: Any, where: str, name: str) -> Any:
        if not isinstance(value, dict):
            raise BadMessage(f"{where}.{name}: must be an object")
        return _build(cls, value, f"{where}.{name}")

    return convert


def _key(key: str, where: str, name: str) -> str:
    """An object's key is a short id (a machine, a heater): checked like a string field."""
    text = _str(key, where, f"{name} key")
    if not 0 < len(text) <= 63:
        raise BadMessage(f"{where}.{name}: key {_show(text)} must be 1 to 63 characters")
    return text


def _float(value: Any, where: str, name: str) -> float:
    # an int too large for a float would raise OverflowError in isfinite: refuse it first
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        raise BadMessage(f"{where}.{name}: {_show(value)} is out of range")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadMessage(f"{where}.{name}: must be a finite number, got {_show(value)}")
    return float(value)


# C0 and C1 controls, DEL, lone surrogates (JSON's "\ud800" decodes to one) and the bidirectional
# overrides that make a shown name read backwards
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def _str(value: Any, where: str, name: str) -> str:
    if type(value) is not str:
        raise BadMessage(f"{where}.{name}: must be a string, got {_show(value)}")
    if len(value) > MAX_STRING:
        raise BadMessage(f"{where}.{name}: {len(value)} characters, more than {MAX_STRING}")
    bad = _UNSHOWABLE.search(value)
    if bad:
        raise BadMessage(f"{where}.{name}: control character or lone surrogate "
                         f"{bad.group()!r} at {bad.start()}")  # fmt: skip
    return value


def _bool(value: Any, where: str, name: str) -> bool:
    if type(value) is not bool:
        raise BadMessage(f"{where}.{name}: must be true or false, got {_show(value)}")
    return value


def _int(value: Any, where: str, name: str) -> int:
    if type(value) is not int:
        raise BadMessage(f"{where}.{name}: must be an integer, got {_show(value)}")
    if not -(2**63) <= value < 2**63:
        raise BadMessage(f"{where}.{name}: {_show(value)} does not fit in 64 bits")
    return value


_SCALAR_CONVERTERS: dict[Any, Converter] = {float: _float, str: _str, bool: _bool, int: _int}
