"""MQTT topic names: the contract between agents and billing (see README, "Topics").

    topics.agent_events("pi-printer")            # 'fabmeter/v1/agent/pi-printer/events'
    topics.parse("fabmeter/v1/machine/printer-1/state")  # Topic(kind='state', id='printer-1')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from broker.errors import BadMessage

PREFIX = "fabmeter/v1"
ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62})")

# kind -> (owner level, suffix). One row per line of the README's "Topics and payloads" table.
KINDS: dict[str, tuple[str, str]] = {
    "status": ("agent", "status"),
    "state": ("machine", "state"),
    "events": ("agent", "events"),
    "ack": ("agent", "ack"),
    "auth_req": ("agent", "auth/req"),
    "auth_resp": ("agent", "auth/resp"),
    "allowlist": ("agent", "allowlist"),
    "cmd": ("agent", "cmd"),
    "service": ("machine", "service"),
}


@dataclass(frozen=True)
class Topic:
    """A parsed topic: which row of the table, and whose agent or machine id."""

    kind: str
    id: str


def is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def check_id(value: str, what: str = "id") -> str:
    if not is_id(value):
        raise BadMessage(
            f"{what} {value!r} is not valid: use 1-63 lowercase letters, digits and hyphens"
        )
    return value


def build(kind: str, ident: str) -> str:
    level, suffix = KINDS[kind]
    return f"{PREFIX}/{level}/{check_id(ident, level + ' id')}/{suffix}"


def pattern(kind: str) -> str:
    """The subscription filter matching this kind of topic for every agent or machine."""
    level, suffix = KINDS[kind]
    return f"{PREFIX}/{level}/+/{suffix}"


def agent_status(agent: str) -> str:
    return build("status", agent)


def machine_state(machine: str) -> str:
    return build("state", machine)


def agent_events(agent: str) -> str:
    return build("events", agent)


def agent_ack(agent: str) -> str:
    return build("ack", agent)


def auth_req(agent: str) -> str:
    return build("auth_req", agent)


def auth_resp(agent: str) -> str:
    return build("auth_resp", agent)


def allowlist(agent: str) -> str:
    return build("allowlist", agent)


def cmd(agent: str) -> str:
    return build("cmd", agent)


def machine_service(machine: str) -> str:
    return build("service", machine)


def parse(topic: str) -> Topic:
    """Which kind of fabmeter topic this is, and for which id; BadMessage for anything else."""
    if not topic.startswith(PREFIX + "/"):
        raise BadMessage(f"topic {topic!r} is not under {PREFIX}/")
    parts = topic[len(PREFIX) + 1 :].split("/")
    if len(parts) >= 3:
        level, ident, suffix = parts[0], parts[1], "/".join(parts[2:])
        for kind, (k_level, k_suffix) in KINDS.items():
            if (k_level, k_suffix) == (level, suffix):
                return Topic(kind, check_id(ident, level + " id"))
    raise BadMessage(f"topic {topic!r} is not a fabmeter v1 topic")
