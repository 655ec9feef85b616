"""Billing fixtures: a migrated ledger on SQLite and, when one is reachable, on PostgreSQL.

``ledger`` is parametrised: each database test runs once per backend. PostgreSQL runs get a
fresh schema (dropped afterwards) so parallel or repeated runs never collide.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from billing.database import make_engine, upgrade
from billing.seed import seed
from tests.postgres import fresh_schema

PEPPER = "test-pepper-not-secret"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with nothing in it yet; the PostgreSQL variant is a fresh schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    with fresh_schema() as url:
        yield url


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
