"""The live state in Redis, written only by billing, read by the dashboard.

    live = LiveState(redis.Redis.from_url(url, decode_responses=True))
    live.status("pi-printer", AgentStatus(online=True, bdseq=7, version="1", machines=("printer-1",)))
    live.state(MachineState(machine="printer-1", state="printing", wall_ns=...))
    live.cost("printer-1", session_id, 240)

Keys: hash ``fabmeter:machine:<machine>`` (string fields listed in ``FIELDS``; ``last_refusal``
is JSON ``{"reason": code, "message", "at": ISO 8601}``, ``out_of_service`` JSON ``{"reason",
"since": ISO 8601}``, ``upkeep_due`` a JSON list of French warnings; "" or "null" when none), set
``fabmeter:machines``, stream ``fabmeter:changes`` (XADD MAXLEN ~ 10000, entries
{machine, state: JSON of the whole hash}). ``fabmeter:agent:<agent>`` keeps the highest
``bdseq`` seen, so a Last Will that arrives late cannot mark a reconnected agent offline.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from billing.health import HEALTH
from broker.messages import AgentStatus, MachineState

log = logging.getLogger(__name__)

MACHINES = "fabmeter:machines"
CHANGES = "fabmeter:changes"
MAXLEN = 10_000
FIELDS = (
    "machine", "agent", "state", "online", "job", "progress", "elapsed_s", "remaining_s",
    "temperatures", "session", "user", "cost_cents", "updated", "offline_since",
    "pin_wait_until", "pin_failures", "unreachable_since", "unclaimed", "out_of_service", "last_refusal",
    "upkeep_due",
)  # fmt: skip


def machine_key(machine: str) -> str:
    return f"fabmeter:machine:{machine}"


def agent_key(agent: str) -> str:
    return f"fabmeter:agent:{agent}"


def _iso(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat()


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def unreachable(fields: dict[str, str]) -> bool:
    """Whether a machine's hash says billing cannot see it now (agent offline, controller silent)."""
    return fields.get("online") != "1" or fields.get("state") == "offline"


class LiveState:
    """Writes machine hashes and the change stream; every write also appends a change."""

    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._clock = clock

    def health(self, report: str) -> None:
        """Billing's own health report (see billing.health), read by the dashboard's /healthz."""
        self._redis.set(HEALTH, report)

    def _now(self) -> str:
        return str(int(self._clock()))

    def _write(self, machine: str, fields: dict[str, str]) -> None:
        key = machine_key(machine)
        existing: dict[str, str] = self._redis.hgetall(key)  # type: ignore[assignment]
        merged: dict[Any, Any] = {name: "" for name in FIELDS} | {"online": "0", "machine": machine}
        merged |= existing | fields | {"updated": self._now()}
        pipe = self._redis.pipeline()
        pipe.hset(key, mapping=merged)
        pipe.sadd(MACHINES, machine)
        pipe.xadd(CHANGES, {"machine": machine, "state": json.dumps(merged, sort_keys=True)},
                  maxlen=MAXLEN, approximate=True)  # fmt: skip
        pipe.execute()

    def status(self, agent: str, status: AgentStatus) -> bool:
        """Apply an agent's status unless an older connection's (lower ``bdseq``); True if applied."""
        known = self._redis.hget(agent_key(agent), "bdseq")
        if known is not None and status.bdseq < int(str(known)):
            log.info("ignored stale status of %s (bdseq %s < %s)", agent, status.bdseq, known)
            return False
        mapping: dict[Any, Any] = {"bdseq": str(status.bdseq), "online": "1" if status.online else "0"}
        self._redis.hset(agent_key(agent), mapping=mapping)
        for machine in status.machines:
            self._machine_online(machine, agent, status.online)
        return True

    def knows(self, agent: str) -> bool:
        """Whether Redis still holds the agent's status (it is empty after a restart)."""
        return bool(self._redis.exists(agent_key(agent)))

    def _machine_online(self, machine: str, agent: str, online: bool) -> None:
        was = self._redis.hget(machine_key(machine), "online")
        since = self._redis.hget(machine_key(machine), "offline_since")
        if online:
            offline_since = ""
        else:
            offline_since = _text(since) if was == "0" and since else self._now()
        self._write(machine, {"agent": agent, "online": "1" if online else "0", "offline_since": offline_since})

    def state(self, state: MachineState, agent: str | None = None) -> None:
        """The agent's retained snapshot of one machine."""
        fields = {
            "state": state.state, "job": _text(state.job), "progress": _text(state.progress),
            "elapsed_s": _text(state.elapsed_s), "remaining_s": _text(state.remaining_s),
            "temperatures": json.dumps(state.temperatures, sort_keys=True),
            "session": _text(state.session), "user": _text(state.user),
        }  # fmt: skip
        if agent:
            fields["agent"] = agent
        key = machine_key(state.machine)
        if state.state != "offline":
            fields["unreachable_since"] = ""
        elif not self._redis.hget(key, "unreachable_since"):
            fields["unreachable_since"] = self._now()  # the controller stopped answering: the cost freezes
        refusal = state.refusal
        fields["last_refusal"] = json.dumps(None if refusal is None else {
            "reason": refusal.code or "refused", "message": refusal.message, "at": _iso(refusal.at),
        }, ensure_ascii=False)  # fmt: skip
        if not state.session:
            fields["cost_cents"] = ""
            fields["unclaimed"] = ""
        elif state.user is None and self._redis.hget(key, "session") == state.session:
            del fields["user"]  # a print attached at the desk: billing knows who, the agent does not
        self._write(state.machine, fields)

    def service(self, machine: str, reason: str | None, since_s: int | None = None) -> None:
        """Show whether staff took the machine out of service (``reason`` None: in service)."""
        value = None if reason is None else {"reason": reason, "since": _iso(since_s or 0)}
        self._write_if_changed(machine, "out_of_service", value)

    def upkeep(self, machine: str, warnings: list[str]) -> None:
        """The upkeep thresholds the machine has passed ("entretien toutes les 200 h : 212 h")."""
        self._write_if_changed(machine, "upkeep_due", warnings or None)

    def _write_if_changed(self, machine: str, field: str, value: Any) -> None:
        """Write a JSON field unless the card already shows it (no change entry for nothing)."""
        text = "" if value is None else json.dumps(value, ensure_ascii=False)
        if _text(self._redis.hget(machine_key(machine), field)) not in (text, "null" if not text else text):
            self._write(machine, {field: text})

    def shown(self, machine: str, field: str) -> str | None:
        value = self._redis.hget(machine_key(machine), field)
        return None if value is None else str(value)

    def pin_wait(self, machine: str, until_s: int | None, failures: int = 0) -> None:
        """Show that the machine's PIN pad waits after wrong PINs (``None``: it listens again)."""
        fields = {"pin_wait_until": _text(until_s), "pin_failures": str(failures) if until_s else ""}
        self._write(machine, fields)

    def pin_waiting(self) -> set[str]:
        """Machines whose card says their PIN pad waits (what a restarted billing must check)."""
        machines = sorted(str(m) for m in self._redis.smembers(MACHINES))
        pipe = self._redis.pipeline(transaction=False)
        for machine in machines:
            pipe.hget(machine_key(machine), "pin_wait_until")
        return {m for m, until in zip(machines, pipe.execute(), strict=True) if until}

    def cost(self, machine: str, session: str, cents: int | None, user: str | None = None,
             *, claimed: bool = True) -> None:  # fmt: skip
        """Cost so far of the machine's current session (ignored if another session runs now).

        ``user`` names the visit the session belongs to, when the agent could not (no badge);
        ``claimed`` False says no visit pays for it yet. While the machine is unreachable (its
        agent offline, or its controller not answering) the shown cost stays as it was: frozen.
        """
        current: dict[str, str] = self._redis.hgetall(machine_key(machine))  # type: ignore[assignment]
        if current.get("session") not in (None, "", session):
            return
        fields = {"unclaimed": "" if claimed else "1"}
        if not unreachable(current):
            fields["cost_cents"] = _text(cents)
        if user and not current.get("user"):
            fields["user"] = user
        self._write(machine, fields)
