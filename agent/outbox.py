"""The durable outbox: usage events wait in SQLite until billing's ack covers them.

    outbox = Outbox(Path("fabmeter-agent.db"))
    outbox.record(events, tracks)       # one transaction: events get seq 1, 2, 3… and tracks are saved
    outbox.pending(after=0, limit=50)   # [(seq, payload bytes), …] to publish
    outbox.acknowledge(upto=41)         # billing committed everything up to 41: those rows go

WAL with ``synchronous=FULL``: a row is on disk before it is published. ``seq`` is an
AUTOINCREMENT key, so it is never reused even after the outbox empties. The ``stream`` UUID is
made when the file is created: a new file is a new stream. Each thread opens its own ``Outbox``.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent.errors import OutboxError
from agent.failpoints import failpoint
from agent.sessions import Pending, Track, dump_track, load_track
from broker.messages import VERSION

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    machine TEXT NOT NULL, type TEXT NOT NULL, session TEXT NOT NULL, boot TEXT NOT NULL,
    mono_ns INTEGER NOT NULL, wall_ns INTEGER NOT NULL, wall_synced INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tracks (machine TEXT PRIMARY KEY, track TEXT NOT NULL);
"""


class Outbox:
    """One connection to the agent's SQLite file (events, open sessions, a few remembered values)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('stream', ?)", (str(uuid.uuid4()),)
            )
        except sqlite3.Error as err:
            raise OutboxError(f"cannot open the outbox {self.path}: {err}") from err
        self.stream: str = self.get("stream") or ""

    def close(self) -> None:
        self._db.close()

    # -- writing ------------------------------------------------------------------------------

    def record(self, events: Iterable[Pending], tracks: Iterable[Track] = ()) -> list[int]:
        """Store events (in order) and the machines' tracks in one transaction; the new seqs."""
        seqs: list[int] = []
        with self._transaction():
            for e in events:
                cur = self._db.execute(
                    "INSERT INTO events (machine, type, session, boot, mono_ns, wall_ns,"
                    " wall_synced, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (e.machine, e.type, e.session, e.now.boot, e.now.mono_ns, e.now.wall_ns,
                     int(e.now.wall_synced), _data_json(e.data)),
                )  # fmt: skip
                seqs.append(int(cur.lastrowid or 0))
            for track in tracks:
                self._db.execute(
                    "INSERT OR REPLACE INTO tracks VALUES (?, ?)", (track.machine, dump_track(track))
                )
        if seqs:
            failpoint("outbox.after_insert")
        return seqs

    def acknowledge(self, upto: int) -> int:
        """Billing committed every event up to ``upto``: delete them; how many rows went."""
        with self._transaction():
            deleted: int = self._db.execute("DELETE FROM events WHERE seq <= ?", (upto,)).rowcount
            if deleted:
                failpoint("outbox.while_deleting")  # the DELETE done, not yet committed
            return deleted

    def put(self, key: str, value: str) -> None:
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def next_bdseq(self) -> int:
        """The birth/death sequence of the next connection attempt (persisted)."""
        with self._transaction():
            value = int(self.get("bdseq") or -1) + 1
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('bdseq', ?)", (str(value),))
        return value

    # -- reading ------------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def pending(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` events with seq > ``after``, encoded as UsageEvent payloads."""
        rows = self._db.execute(
            "SELECT seq, machine, type, session, boot, mono_ns, wall_ns, wall_synced, data"
            " FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [(row[0], self._payload(row)) for row in rows]

    def _payload(self, row: tuple[Any, ...]) -> bytes:
        seq, machine, kind, session, boot, mono_ns, wall_ns, synced, data = row
        body = {
            "v": VERSION, "stream": self.stream, "seq": seq, "machine": machine, "type": kind,
            "session": session, "boot": boot, "mono_ns": mono_ns, "wall_ns": wall_ns,
            "wall_synced": bool(synced), "data": json.loads(data),
        }  # fmt: skip
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def last_seq(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return 0 if row is None else int(row[0])

    def tracks(self) -> dict[str, Track]:
        rows = self._db.execute("SELECT machine, track FROM tracks").fetchall()
        return {machine: load_track(text) for machine, text in rows}

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self.path)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, with SQLite errors wrapped once into OutboxError."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db, self._path = db, path

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise OutboxError(f"cannot write the outbox {self._path}: {err}") from err

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: Any) -> None:
        if kind is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error as commit_err:
                self._db.execute("ROLLBACK")
                raise OutboxError(f"cannot write the outbox {self._path}: {commit_err}") from commit_err
        self._db.execute("ROLLBACK")
        if isinstance(err, sqlite3.Error):
            raise OutboxError(f"cannot write the outbox {self._path}: {err}") from err


def _data_json(data: Any) -> str:
    return json.dumps(dataclasses.asdict(data), separators=(",", ":"), ensure_ascii=False)
