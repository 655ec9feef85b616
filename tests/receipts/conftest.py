"""Receipts fixtures: a migrated, seeded ledger (SQLite, and PostgreSQL where one answers).

``any_db`` runs a test on both backends (PostgreSQL in a fresh schema, dropped afterwards);
``db`` is SQLite only, for the tests whose subject is not the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from billing.catalogue import add_item
from billing.config import OrganisationConfig
from billing.database import make_engine, upgrade
from billing.ledger.seals import LEDGER_KEY, open_segment
from billing.models import Category, Customer
from billing.seed import seed
from billing.visits import open_visit
from tests.postgres import fresh_schema

PEPPER = "test-pepper-not-secret"
OPENED = datetime(2026, 11, 26, 13, 30, tzinfo=UTC)  # a visit's opening, when a test needs a date
ORG = OrganisationConfig(name="Fablab du Val", address="1 place de la Mairie\n00000 Le Village",
                         siret="123 456 789 00012")  # fmt: skip


def _migrated(url: str) -> Engine:
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as db:
        seed(db)
        db.commit()
    return engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = _migrated(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = _migrated(f"sqlite:///{tmp_path / 'ledger.db'}")
        yield engine
        engine.dispose()
        return
    with fresh_schema() as url:
        engine = _migrated(url)
        yield engine
        engine.dispose()


@pytest.fixture
def sessions(sqlite_engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(sqlite_engine, expire_on_commit=False)


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def any_db(any_engine: Engine) -> Iterator[Session]:
    with sessionmaker(any_engine, expire_on_commit=False)() as session:
        yield session


KEY = "0123456789abcdef" * 4  # the ledger key of the keyed sessions


@pytest.fixture
def keyed(any_engine: Engine) -> Iterator[Session]:
    """A session holding the ledger key on SQLite and PostgreSQL, closed before the schema is dropped."""
    with sessionmaker(any_engine, expire_on_commit=False, info={LEDGER_KEY: KEY})() as db:
        open_segment(db, KEY)
        yield db


def walk_in(
    db: Session, *items: tuple[str, str], name: str | None = None, opened: datetime | None = None
) -> int:
    """An open walk-in visit with catalogue items (code, quantity); committed, returns its id."""
    visit = open_visit(db, pepper=PEPPER, category="walk-in", actor="alice", name=name, now=opened).visit
    for code, quantity in items:
        add_item(db, visit.id, code, Decimal(quantity), actor="alice")
    db.commit()
    return visit.id


def company_visit(db: Session, opened: datetime = OPENED) -> int:
    company = db.query(Category).filter_by(code="company").one()
    customer = db.query(Customer).filter_by(ref="C0007").one_or_none() or Customer(
        ref="C0007", kind="company", name="Léa Martin", company_name="Atelier Bois & Fils SARL",
        company_address="12 rue des Scieurs", postcode="00100", city="Bourg", country="FR",
        siren="552100554", category_id=company.id,
    )  # fmt: skip
    db.add(customer)
    db.flush()
    visit = open_visit(
        db, pepper=PEPPER, category="company", actor="alice", customer_id=customer.id, now=opened
    ).visit
    add_item(db, visit.id, "training-laser", Decimal("1"), actor="alice")
    add_item(db, visit.id, "plywood-5mm", Decimal("3"), actor="alice")
    db.commit()
    return visit.id
