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
class Notice:
    """Out of service, or the last refusal at the machine: why, what it said, since when."""

    reason: str
    message: str
    at: datetime | None


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
    session: str = ""
    unclaimed: bool = False  # a session runs that no visit pays for yet
    since: datetime | None = None  # when the current session started
    unreachable_since: datetime | None = None  # the agent answers, the machine's controller does not
    out_of_service: Notice | None = None
    last_refusal: Notice | None = None
    upkeep_due: tuple[str, ...] = ()  # "entretien toutes les 200 h : 212 h"

    @property
    def shown_state(self) -> str:
        """What the card says first: out of service, offline, unclaimed, locked, in use, or the machine's state."""
        if self.out_of_service:
            return "out_of_service"
        if not self.online or self.state == "offline":
            return "offline"
        if self.session and self.unclaimed:
            return "unclaimed"
        if not self.session and self.pin_wait_until:
            return "locked"
        if self.session and self.state == "idle":
            return "busy"  # a badge session is open: the machine is taken even while it rests
        return self.state

    @property
    def frozen_since(self) -> datetime | None:
        """Since when the cost shown stopped following (billing cannot see the machine)."""
        if self.cost_cents is None or self.shown_state != "offline":
            return None
        return self.offline_since if not self.online else self.unreachable_since

    @property
    def first_name(self) -> str:
        """The user's first name only (what a wall screen may show)."""
        return self.user.split()[0] if self.user.strip() else ""


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


def _notice(text: str | None, message: str = "message", at: str = "at") -> Notice | None:
    """``{"reason", "message", "at"}`` (a refusal) or ``{"reason", "since"}`` (out of service), as JSON."""
    try:
        found = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(found, dict) or not found.get("reason"):
        return None
    try:
        moment = datetime.fromisoformat(str(found.get(at))) if found.get(at) else None
    except ValueError:
        moment = None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Notice(str(found["reason"])[:200], str(found.get(message) or "")[:500], moment)


def _offset(moment: datetime | None, seconds: int | None) -> datetime | None:
    if moment is None or seconds is None:
        return None
    return datetime.fromtimestamp(moment.timestamp() + seconds, UTC)


def _warnings(text: str | None) -> tuple[str, ...]:
    try:
        found = json.loads(text) if text else []
    except ValueError:
        return ()
    return tuple(str(w) for w in found) if isinstance(found, list) else ()


def machine_card(fields: dict[str, str], name: str | None = None) -> Card:
    """A card from a machine's hash; ``ends_at`` = last update + remaining seconds."""
    updated = _moment(fields.get("updated"))
    ends_at = _offset(updated, _int(fields.get("remaining_s")))
    elapsed = _int(fields.get("elapsed_s"))
    machine = fields.get("machine", "")
    return Card(
        machine=machine, name=name or machine, state=fields.get("state") or "offline",
        online=fields.get("online") == "1", user=fields.get("user", ""), job=fields.get("job", ""),
        progress=_float(fields.get("progress")), elapsed_s=_int(fields.get("elapsed_s")),
        ends_at=ends_at, temperatures=_temperatures(fields.get("temperatures")),
        cost_cents=_int(fields.get("cost_cents")), offline_since=_moment(fields.get("offline_since")),
        updated=updated, pin_wait_until=_moment(fields.get("pin_wait_until")),
        pin_failures=_int(fields.get("pin_failures")) or 0, session=fields.get("session", ""),
        unclaimed=fields.get("unclaimed") == "1",
        since=_offset(updated, -elapsed) if fields.get("session") and elapsed is not None else None,
        unreachable_since=_moment(fields.get("unreachable_since")),
        out_of_service=_notice(fields.get("out_of_service"), message="message", at="since"),
        last_refusal=_notice(fields.get("last_refusal")),
        upkeep_due=_warnings(fields.get("upkeep_due")),
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
