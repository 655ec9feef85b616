"""Engines, sessions and migrations for the ledger (SQLite file or PostgreSQL).

    engine = make_engine("sqlite:///fabmeter.db")
    upgrade(engine.url)                       # what ``fabmeter db upgrade`` runs
    with Session(engine) as db: ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import SQLAlchemyError

from billing.errors import DatabaseError

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str | URL, **kw: Any) -> Engine:
    """An engine; SQLite gets WAL, foreign keys and a busy timeout (the dashboard writes too)."""
    engine = create_engine(url, **kw)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before billing acks it and the agent forgets the events; with
    # NORMAL a power cut at the server could lose the last commits that were already acked
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def alembic_config(url: str | URL) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    rendered = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``, creating tables from the first migration."""
    try:
        command.upgrade(alembic_config(url), revision)
    except SQLAlchemyError as err:
        shown = make_url(url).render_as_string(hide_password=True)
        raise DatabaseError("cannot migrate %(url)s: %(err)s — is the database reachable?", url=shown, err=str(err)) from err
