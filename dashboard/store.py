"""The dashboard's handles on the ledger (SQLAlchemy) and the live state (Redis).

    store = Store.open(config.database_url, redis_url=config.redis_url)
    with store.session() as db: ...
    db = ledger()          # inside a request: one Session per request, closed at teardown

A request that changes the ledger commits explicitly; anything left uncommitted is rolled back
when the request ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, current_app, g
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from billing.database import make_engine
from billing.health import HEALTH, read_problems
from billing.ledger.seals import LEDGER_KEY


@dataclass(frozen=True)
class Store:
    """An engine with its session factory, and a Redis client that decodes to str."""

    engine: Engine
    sessions: sessionmaker[Session]
    redis: Any

    @classmethod
    def open(cls, database_url: str, *, redis_url: str | None = None, client: Any = None,
             ledger_key: str | None = None) -> Store:  # fmt: skip
        """``ledger_key`` seals the documents the desk issues (``billing.ledger.seals``)."""
        engine = make_engine(database_url, pool_pre_ping=True)
        if client is None:
            # socket_timeout must outlast the SSE endpoint's blocking XREAD
            client = redis.Redis.from_url(
                redis_url or "redis://127.0.0.1:6379/0", decode_responses=True,
                socket_timeout=60, socket_connect_timeout=3, health_check_interval=30,
            )  # fmt: skip
        info = {LEDGER_KEY: ledger_key} if ledger_key else {}
        return cls(engine, sessionmaker(engine, expire_on_commit=False, info=info), client)

    def session(self) -> Session:
        return self.sessions()

    def problems(self) -> list[str]:
        """What does not answer or move right now: 'database: …', 'redis: …', 'billing ingest: …'."""
        found = []
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as err:
            found.append(f"database: {err.__class__.__name__}")
        try:
            self.redis.ping()
            found += read_problems(self.redis.get(HEALTH), time.time())
        except redis.RedisError as err:
            found.append(f"redis: {err.__class__.__name__}")
        return found


def store() -> Store:
    found: Store = current_app.extensions["fabmeter.store"]
    return found


def ledger() -> Session:
    """This request's ledger session (opened on first use)."""
    if "ledger" not in g:
        g.ledger = store().session()
    session: Session = g.ledger
    return session


def live() -> Any:
    return store().redis


def _close(_error: BaseException | None) -> None:
    session = g.pop("ledger", None)
    if session is not None:
        session.close()


def install(app: Flask, opened: Store) -> None:
    app.extensions["fabmeter.store"] = opened
    app.teardown_appcontext(_close)
