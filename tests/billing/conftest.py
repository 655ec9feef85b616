"""Billing fixtures: a migrated ledger on SQLite and, when one is reachable, on PostgreSQL.

``ledger`` is parametrised: each database test runs once per backend. PostgreSQL runs get a
fresh schema (dropped afterwards) so parallel or repeated runs never collide.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from billing.database import make_engine, upgrade
from billing.seed import seed

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PEPPER = "test-pepper-not-secret"


def _postgres_reachable() -> bool:
    try:
        engine = make_engine(POSTGRES, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable here"
        return False


_PG = _postgres_reachable()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with nothing in it yet; the PostgreSQL variant is a fresh schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    if not _PG:
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session on a migrated ledger filled with the seed fablab."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session:
        seed(session)
        session.commit()
        yield session


@pytest.fixture
def pepper() -> str:
    return PEPPER
