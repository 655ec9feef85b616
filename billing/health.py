"""Whether each part of billing makes progress: what ``/healthz`` and systemd's watchdog are told.

    parts = Parts(clock=time.monotonic, stall_s=60)
    parts.add("ingest", waiting=lambda: queue.qsize())
    parts.moved("ingest")            # a batch committed, or nothing waited
    parts.problems()                 # ['ingest: no progress for 75 s while 120 messages wait']

A part is stalled when work waits for it and it has not moved for ``stall_s``; a part that
crashed and was restarted says so too (``restarts``). Billing writes the report to Redis
(``HEALTH``) every tick; the dashboard's ``/healthz`` reads it and answers 503 naming the part.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HEALTH = "fabmeter:billing:health"
SILENT_S = 60.0  # a report older than this means billing itself stopped writing it


@dataclass
class Part:
    name: str
    waiting: Callable[[], int]
    moved_at: float
    restarts: int = 0


class Parts:
    """The progress of billing's worker threads (each calls ``moved`` from its own loop)."""

    def __init__(self, *, stall_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._stall_s = stall_s
        self._parts: dict[str, Part] = {}
        self._lock = threading.Lock()

    def add(self, name: str, waiting: Callable[[], int]) -> None:
        self._parts[name] = Part(name, waiting, self._clock())

    def moved(self, name: str) -> None:
        self._parts[name].moved_at = self._clock()

    def restarted(self, name: str) -> None:
        with self._lock:
            self._parts[name].restarts += 1

    def restarts(self, name: str) -> int:
        return self._parts[name].restarts

    def problems(self) -> list[str]:
        now = self._clock()
        found = []
        for part in self._parts.values():
            waiting, idle = part.waiting(), now - part.moved_at
            if waiting and idle > self._stall_s:
                found.append(f"{part.name}: no progress for {idle:.0f} s while {waiting} messages wait")
        return found

    def report(self, wall: float) -> dict[str, Any]:
        """What billing publishes: its problems, each part's restarts, and when it said so."""
        parts = {p.name: {"waiting": p.waiting(), "restarts": p.restarts} for p in self._parts.values()}
        return {"at": wall, "problems": self.problems(), "parts": parts}


def read_problems(raw: str | None, now: float) -> list[str]:
    """The problems in a report billing wrote (none when billing never wrote one)."""
    if raw is None:
        return []
    try:
        report = json.loads(raw)
        at, problems = float(report["at"]), [str(p) for p in report["problems"]]
    except (ValueError, KeyError, TypeError):
        return ["billing: unreadable health report"]
    if now - at > SILENT_S:
        return [f"billing: no health report for {now - at:.0f} s"]
    return [f"billing {p}" for p in problems]
