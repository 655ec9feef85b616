"""What a machine card on the live board shows, computed from its Redis hash.

    card = machine_card(redis.hgetall("fabmeter:machine:printer-1"), "Imprimante 3D", now=time.time())
    card.state, card.online, card.progress, card.ends_at, card.cost_cents

Pure: the fields come in as strings (as Redis stores them), nothing here reads a clock or a
socket. A card whose agent is offline keeps its last state but is shown greyed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billing.live import CHANGES, MACHINES, machine_key


@dataclass(frozen=True)
class Temperature:
    name: str
    value: float


@dataclass(frozen=True)
class Card:
    """One machine on the board."""

    machine: str
    name: str
    state: str
    online: bool
    user: str
    job: str
    progress: float | None
    elapsed_s: int | None
    ends_at: datetime | None
    temperatures: tuple[Temperature, ...]
    cost_cents: int | None
    offline_since: datetime | None
    updated: datetime | None
    pin_wait_until: datetime | None = None  # the PIN pad ignores PINs until then (wrong PINs)
    pin_failures: int = 0
    out_of_service: dict[str, str] | None = None  # {"reason", "since"} while staff keep it out
    last_refusal: dict[str, str] | None = None  # {"reason" (a code), "message", "at"}
    upkeep_due: tuple[str, ...] = ()  # "entretien toutes les 200 h : 212 h"

    @property
    def shown_state(self) -> str:
        return self.state if self.online else "offline"


def _int(text: str | None) -> int | None:
    try:
        return int(float(text)) if text not in (None, "") else None
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _moment(text: str | None) -> datetime | None:
    seconds = _int(text)
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def _temperatures(text: str | None) -> tuple[Temperature, ...]:
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return ()
    if not isinstance(found, dict):
        return ()
    return tuple(
        Temperature(str(name), float(value))
        for name, value in sorted(found.items())
        if isinstance(value, int | float)
    )


def _json_object(text: str | None) -> dict[str, str] | None:
    try:
        found = json.loads(text) if text else None
    except ValueError:
        return None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None


def _warnings(text: str | None) -> tuple[str, ...]:
    try:
        found = json.loads(text) if text else []
    except ValueError:
        return ()
    return tuple(str(w) for w in found) if isinstance(found, list) else ()


def machine_card(fields: dict[str, str], name: str | None = None) -> Card:
    """A card from a machine's hash; ``ends_at`` = last update + remaining seconds."""
    updated = _moment(fields.get("updated"))
    remaining = _int(fields.get("remaining_s"))
    ends_at = None
    if updated is not None and remaining is not None:
        ends_at = datetime.fromtimestamp(updated.timestamp() + remaining, UTC)
    machine = fields.get("machine", "")
    return Card(
        machine=machine, name=name or machine, state=fields.get("state") or "offline",
        online=fields.get("online") == "1", user=fields.get("user", ""), job=fields.get("job", ""),
        progress=_float(fields.get("progress")), elapsed_s=_int(fields.get("elapsed_s")),
        ends_at=ends_at, temperatures=_temperatures(fields.get("temperatures")),
        cost_cents=_int(fields.get("cost_cents")), offline_since=_moment(fields.get("offline_since")),
        updated=updated, pin_wait_until=_moment(fields.get("pin_wait_until")),
        pin_failures=_int(fields.get("pin_failures")) or 0,
        out_of_service=_json_object(fields.get("out_of_service")),
        last_refusal=_json_object(fields.get("last_refusal")), upkeep_due=_warnings(fields.get("upkeep_due")),
    )  # fmt: skip


def read_cards(client: Any, names: dict[str, str]) -> tuple[list[Card], str]:
    """Every machine's card (sorted by name) and the change stream's last id at that moment.

    The id is read first, so a change landing between the two reads is sent again by the
    event stream rather than lost.
    """
    last = client.xrevrange(CHANGES, count=1)
    last_id = last[0][0] if last else "0-0"
    machines = sorted(set(client.smembers(MACHINES)) | set(names))
    pipe = client.pipeline(transaction=False)
    for machine in machines:
        pipe.hgetall(machine_key(machine))
    cards = [
        machine_card({"machine": machine, **fields}, names.get(machine))
        for machine, fields in zip(machines, pipe.execute(), strict=True)
    ]
    return sorted(cards, key=lambda c: (c.name.lower(), c.machine)), last_id
