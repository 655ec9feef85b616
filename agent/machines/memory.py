"""What a driver keeps across an agent restart: which run of a file the job it follows is.

    memory = outbox                       # anything with get(key) / put(key, value)
    remember(memory, "octoprint_run:printer-1", {"key": "local:benchy.gcode@1764140000#1764150000"})
    recall(memory, "octoprint_run:printer-1")    # {'key': ...}, or None

A controller names a file, not a run of it; the driver makes the run's key when it sees a run
begin, and keeps it here so that a restarted agent goes on with the same job.
"""

from __future__ import annotations

import json
from typing import Any, Protocol


class Memory(Protocol):
    """Where a driver keeps what must survive an agent restart (the outbox's meta table)."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


class Scratch(dict[str, str]):
    """A memory that lasts as long as the process (tests, and drivers built without an outbox)."""

    def put(self, key: str, value: str) -> None:
        self[key] = value


def recall(memory: Memory, key: str) -> dict[str, Any] | None:
    text = memory.get(key)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None  # a damaged record is forgotten, not fatal: the next run gets a new key
    return value if isinstance(value, dict) else None


def remember(memory: Memory, key: str, value: dict[str, Any] | None) -> None:
    memory.put(key, json.dumps(value) if value is not None else "")
