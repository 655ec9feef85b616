"""Builds the usage events an agent would publish, for billing tests and the benchmark.

    sim = AgentSim("pi-printer", "printer-1")
    sim.session_started(visit="3"); sim.checkpoint(60, 60, 0); sim.session_ended(...)
    sim.payloads      # [(seq, bytes), ...] in seq order
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from billing.grants import grant_online
from broker import topics
from broker.messages import (
    AuthRequest,
    JobCorrected,
    JobEnded,
    JobStarted,
    SessionEnded,
    SessionStarted,
    SessionTotals,
    UsageEvent,
    encode,
)


@dataclass
class AgentSim:
    agent: str
    machine: str
    stream: str = field(default_factory=lambda: str(uuid.uuid4()))
    session: str = field(default_factory=lambda: str(uuid.uuid4()))
    seq: int = 0
    payloads: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return topics.agent_events(self.agent)

    def new_session(self) -> str:
        self.session = str(uuid.uuid4())
        return self.session

    def event(self, kind: str, data: Any) -> bytes:
        self.seq += 1
        payload = encode(UsageEvent(
            stream=self.stream, seq=self.seq, machine=self.machine, type=kind, session=self.session,
            boot="boot-1", mono_ns=self.seq * 1_000_000, wall_ns=time.time_ns(), wall_synced=True,
            data=data,
        ))  # fmt: skip
        self.payloads.append((self.seq, payload))
        return payload

    def granted(self, db: Session, visit_id: int) -> None:
        """What billing records when it answers yes to this session's auth request."""
        grant_online(db, self.agent, AuthRequest("badge", "0A1B2C3D4E", self.machine, self.session), visit_id)
        db.commit()

    def session_started(self, visit: str | None, auth: str = "online") -> bytes:
        return self.event("session_started", SessionStarted(auth=auth, visit=visit))

    def checkpoint(self, session_s: int, busy_s: int = 0, job_s: int = 0) -> bytes:
        return self.event("session_checkpoint", SessionTotals(session_s, busy_s, job_s))

    def job_started(self, job: str, estimate_mm: float | None = None) -> bytes:
        return self.event("job_started", JobStarted(job, estimate_mm))

    def job_ended(self, job: str, outcome: str, job_s: int, *, filament_mm: float | None = None,
                  progress: float | None = 100.0) -> bytes:  # fmt: skip
        source = None if filament_mm is None else "measured"
        return self.event("job_ended", JobEnded(job, outcome, job_s, progress, filament_mm, source))

    def job_corrected(self, job: str, filament_mm: float, key: str = "local:big.gcode@1#2.1") -> bytes:
        return self.event("job_corrected", JobCorrected(key, job, filament_mm, "estimate"))

    def session_ended(self, reason: str, session_s: int, busy_s: int = 0, job_s: int = 0) -> bytes:
        return self.event("session_ended", SessionEnded(reason, session_s, busy_s, job_s))
