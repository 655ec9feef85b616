"""Idempotent ingest of the agents' usage events: commit, then ack; heal gaps with resend.

    inbox = Inbox(sessionmaker(engine), gap_wait_s=2.0)
    result = inbox.commit([Received(topic, payload, mid), ...])   # one transaction
    result.acks        # [("pi-printer", Ack(stream, upto)), ...]: publish retained, then PUBACK
    inbox.resends()    # [("pi-printer", Command("resend", stream, first, last))] once a gap is old

Each event is stored once under (agent, stream, seq); a duplicate changes nothing. Events are
applied to sessions strictly in seq order: one that arrives above a hole is stored and waits
until the hole is filled, so out-of-order delivery never prices a session early. A message
that cannot be used is recorded among rejected messages and counted as handled.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from billing.models import InboxEvent, StreamPosition, utcnow
from billing.models import rejected as rejected_row
from billing.sessions import apply_event
from broker import topics
from broker.errors import BadMessage
from broker.messages import Ack, Command, SessionTotals, UsageEvent, decode

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (agent, stream)


@dataclass(frozen=True)
class Received:
    """A message as it came off the bus; ``mid`` is what to PUBACK once it is committed."""

    topic: str
    payload: bytes
    mid: int = 0


@dataclass(frozen=True)
class Parsed:
    agent: str
    event: UsageEvent
    text: str


@dataclass(frozen=True)
class BatchResult:
    """What a committed batch asks for: acks to publish and sessions whose totals moved."""

    acks: list[tuple[str, Ack]]
    sessions: set[str]
    rejected: int


@dataclass
class StreamState:
    """In-memory mirror of one stream's position: committed seqs above the contiguous ``upto``."""

    upto: int
    above: set[int] = field(default_factory=set)
    gap_since: float | None = None
    asked_at: float | None = None

    def first_gap(self) -> tuple[int, int] | None:
        return (self.upto + 1, min(self.above) - 1) if self.above else None


@functools.lru_cache(maxsize=1024)
def _topic(topic: str) -> topics.Topic:
    return topics.parse(topic)


def parse(message: Received) -> Parsed | str:
    """The event, or the reason it cannot be used."""
    try:
        where = _topic(message.topic)
        if where.kind != "events":
            return f"not an events topic ({where.kind})"
        event = decode(UsageEvent, message.payload)
        return Parsed(where.id, event, message.payload.decode("utf-8"))
    except BadMessage as err:
        return str(err)
    except Exception as err:  # decoding is total: this would be a bug, still not a reason to stop
        log.exception("message on %s could not be parsed", message.topic)
        return f"cannot be parsed: {err.__class__.__name__}: {err}"


def _unavailable(err: Exception) -> bool:
    """The database itself is unreachable or busy: retry the batch later, do not reject it."""
    return isinstance(err, OperationalError | InterfaceError | TimeoutError)


def _superseded(event: UsageEvent, after: UsageEvent) -> bool:
    """A checkpoint followed by a checkpoint of the same session that covers it changes nothing.

    Totals only grow (billing keeps the maximum), so in a backlog of checkpoints only the last of
    each run needs the database: that is most of what a van brings back after days offline.
    """
    first, second = event.data, after.data
    return (
        isinstance(first, SessionTotals)
        and isinstance(second, SessionTotals)
        and event.session == after.session
        and second.session_s >= first.session_s
        and second.busy_s >= first.busy_s
        and second.job_s >= first.job_s
    )


class Inbox:
    """Commits batches of events and tracks each stream's contiguous position (one consumer)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        gap_wait_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self._gap_wait_s = gap_wait_s
        self._clock = clock
        self._streams: dict[Key, StreamState] = {}

    # -- committing -----------------------------------------------------------------------

    def commit(self, batch: Sequence[Received]) -> BatchResult:
        """Store and apply a batch in one transaction; falls back to one event at a time."""
        parsed: list[Parsed] = []
        rejected: list[tuple[Received, str]] = []
        for message in batch:
            result = parse(message)
            if isinstance(result, str):
                rejected.append((message, result))
            else:
                parsed.append(result)
        try:
            return self._commit(parsed, rejected)
        except Exception as err:  # one event that cannot be applied must not hold back the others
            self._forget({(p.agent, p.event.stream) for p in parsed})
            if not parsed or (len(parsed) == 1 and _unavailable(err)):
                raise
            log.exception("batch of %s events failed; committing them one by one", len(parsed))
        return self._one_by_one(parsed, rejected)

    def _one_by_one(self, parsed: list[Parsed], rejected: list[tuple[Received, str]]) -> BatchResult:
        acks: dict[Key, Ack] = {}
        sessions: set[str] = set()
        bad = len(rejected)
        self._commit([], rejected)
        for item in parsed:
            try:
                result = self._commit([item], [])
            except Exception as err:
                self._forget({(item.agent, item.event.stream)})
                if _unavailable(err):
                    raise
                log.exception("event %s/%s of %s cannot be applied", item.event.stream, item.event.seq, item.agent)
                bad += 1
                result = self._commit_as_rejected(item, f"cannot be applied: {err.__class__.__name__}: {err}")
            acks.update({(a, ack.stream): ack for a, ack in result.acks})
            sessions |= result.sessions
        return BatchResult([(a, ack) for (a, _s), ack in acks.items()], sessions, bad)

    def _commit_as_rejected(self, item: Parsed, reason: str) -> BatchResult:
        """Keep a poisoned event out of the way: stored and rejected, so its stream moves on."""
        with self._factory.begin() as db:
            db.add(rejected_row(topics.agent_events(item.agent), item.text.encode(), reason))
            state = self._state(db, (item.agent, item.event.stream))
            self._store(db, [item])
            state.above.add(item.event.seq)
            self._advance(db, (item.agent, item.event.stream), state, {}, utcnow(), skip=item.event.seq)
            return BatchResult([(item.agent, Ack(item.event.stream, state.upto))], set(), 1)

    def _commit(self, parsed: list[Parsed], rejected: list[tuple[Received, str]]) -> BatchResult:
        now = utcnow()
        with self._factory.begin() as db:
            if rejected:
                db.add_all(rejected_row(m.topic, m.payload, r, now) for m, r in rejected)
            by_stream: dict[Key, dict[int, Parsed]] = {}
            for item in parsed:
                by_stream.setdefault((item.agent, item.event.stream), {})[item.event.seq] = item
            fresh: list[Parsed] = []
            for key, events in by_stream.items():
                state = self._state(db, key)
                fresh += [p for seq, p in events.items() if seq > state.upto and seq not in state.above]
            self._store(db, fresh)
            sessions: set[str] = set()
            for key, events in by_stream.items():
                state = self._streams[key]
                state.above.update(p.event.seq for p in fresh if (p.agent, p.event.stream) == key)
                sessions |= self._advance(db, key, state, events, now)
            acks = [(agent, Ack(stream, self._streams[(agent, stream)].upto)) for agent, stream in by_stream]
        self._note_gaps(by_stream)
        return BatchResult(acks, sessions, len(rejected))

    def _store(self, db: Session, fresh: list[Parsed]) -> None:
        if not fresh:
            return
        connection = db.connection()
        at = _bound(connection.dialect, InboxEvent.__table__.c.received_at, utcnow())
        rows = [
            (p.agent, p.event.stream, p.event.seq, p.event.type, p.event.machine, p.event.session,
             p.text, at)
            for p in fresh
        ]  # fmt: skip
        # straight to the driver's executemany: per-row statement processing costs more than SQLite
        connection.exec_driver_sql(_insert_sql(connection.dialect), rows)

    def _advance(
        self, db: Session, key: Key, state: StreamState, events: dict[int, Parsed],
        now: datetime, *, skip: int | None = None,
    ) -> set[str]:  # fmt: skip
        """Move ``upto`` over contiguous seqs, applying each event in order."""
        ready: list[int] = []
        while state.upto + 1 in state.above:
            state.upto += 1
            state.above.discard(state.upto)
            ready.append(state.upto)
        touched: set[str] = set()
        ready = [seq for seq in ready if seq != skip]
        if ready:
            missing = [seq for seq in ready if seq not in events]
            stored = self._load(db, key, missing) if missing else {}
            items = [item for seq in ready if (item := events.get(seq) or stored.get(seq))]
            for item, after in zip(items, [*items[1:], None], strict=True):
                if after is not None and _superseded(item.event, after.event):
                    continue
                session = apply_event(db, key[0], item.event, now)
                if session is not None:
                    touched.add(session.id)
        position = db.get(StreamPosition, key) or StreamPosition(agent=key[0], stream=key[1])
        position.upto = state.upto
        position.highest = max(state.above | {state.upto, position.highest or 0})
        position.updated_at = utcnow()
        db.add(position)
        return touched

    def _load(self, db: Session, key: Key, seqs: list[int]) -> dict[int, Parsed]:
        """Events committed earlier above a hole, now ready to apply."""
        query = select(InboxEvent.seq, InboxEvent.payload).where(
            InboxEvent.agent == key[0], InboxEvent.stream == key[1], InboxEvent.seq.in_(seqs)
        )
        loaded: dict[int, Parsed] = {}
        for seq, payload in db.execute(query):
            try:
                loaded[seq] = Parsed(key[0], decode(UsageEvent, payload), payload)
            except BadMessage:
                log.warning("stored event %s/%s/%s no longer decodes; skipped", key[0], key[1], seq)
        return loaded

    # -- positions ------------------------------------------------------------------------

    def _state(self, db: Session, key: Key) -> StreamState:
        state = self._streams.get(key)
        if state is None:
            position = db.get(StreamPosition, key)
            upto = position.upto if position else 0
            above = db.scalars(select(InboxEvent.seq).where(
                InboxEvent.agent == key[0], InboxEvent.stream == key[1], InboxEvent.seq > upto
            ))  # fmt: skip
            state = self._streams[key] = StreamState(upto, set(above))
        return state

    def _forget(self, keys: Iterable[Key]) -> None:
        for key in keys:
            self._streams.pop(key, None)

    def positions(self) -> list[tuple[str, Ack]]:
        """Every stream's committed position: republished at start (the last ack may be lost)."""
        with self._factory() as db:
            rows = db.scalars(select(StreamPosition)).all()
            return [(p.agent, Ack(p.stream, p.upto)) for p in rows]

    # -- gaps -----------------------------------------------------------------------------

    def _note_gaps(self, keys: Iterable[Key]) -> None:
        now = self._clock()
        for key in keys:
            state = self._streams[key]
            if not state.above:
                state.gap_since = state.asked_at = None
            elif state.gap_since is None:
                state.gap_since = now

    def resends(self) -> list[tuple[str, Command]]:
        """Resend commands for holes older than the gap wait (asked again if still open later)."""
        now = self._clock()
        commands: list[tuple[str, Command]] = []
        for (agent, stream), state in self._streams.items():
            gap = state.first_gap()
            if gap is None or state.gap_since is None or now - state.gap_since < self._gap_wait_s:
                continue
            if state.asked_at is not None and now - state.asked_at < max(5 * self._gap_wait_s, 5.0):
                continue
            state.asked_at = now
            commands.append((agent, Command("resend", stream, gap[0], gap[1])))
        return commands


_COLUMNS = "agent, stream, seq, type, machine_id, session_id, payload, received_at"


def _insert_sql(dialect: Dialect) -> str:
    """An INSERT that skips rows whose (agent, stream, seq) exists (another consumer, a race)."""
    marks = ", ".join(["?"] * 8) if dialect.paramstyle == "qmark" else ", ".join(["%s"] * 8)
    if dialect.name == "sqlite":
        return f"INSERT OR IGNORE INTO inbox_events ({_COLUMNS}) VALUES ({marks})"
    return f"INSERT INTO inbox_events ({_COLUMNS}) VALUES ({marks}) ON CONFLICT DO NOTHING"


def _bound(dialect: Dialect, column: Any, value: Any) -> Any:
    """``value`` as the driver receives it for ``column`` (our UTC timestamps, the dialect's format)."""
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor(value) if processor else value
