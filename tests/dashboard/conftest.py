"""Dashboard fixtures: a seeded ledger (SQLite, copied from a template migrated once), fakeredis,
an app with two staff users (alice is admin, bob is staff) and a ``login`` helper.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from billing.config import ServerConfig
from billing.database import make_engine, upgrade
from billing.seed import seed
from dashboard import create_app
from dashboard.staff import create_user

PASSWORD = "correct horse battery"
PEPPER = "test-pepper-not-secret"


def write_config(folder: Path, database: Path, redis_url: str = "redis://127.0.0.1:1/0") -> Path:
    secrets = folder / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "pepper").write_text(PEPPER)
    (secrets / "secret_key").write_text("test-secret-key-not-secret")
    path = folder / "server.toml"
    path.write_text(
        f'database_url = "sqlite:///{database}"\n'
        f'redis_url = "{redis_url}"\n'
        'pepper_file = "secrets/pepper"\n'
        'secret_key_file = "secrets/secret_key"\n'
        "[organisation]\n"
        'name = "Fablab du Val"\n'
        'address = "1 place de la Mairie, 00000 Le Village"\n'
        'siret = "123 456 789 00012"\n'
    )
    return path


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, seeded ledger with alice (admin) and bob (staff), built once per run."""
    path = tmp_path_factory.mktemp("template") / "ledger.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as db:
        seed(db)
        create_user(db, "alice", PASSWORD, role="admin", actor="test")
        create_user(db, "bob", PASSWORD, role="staff", actor="test")
        db.commit()
    engine.dispose()
    return path


@pytest.fixture
def ledger_path(template_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    shutil.copy(template_db, path)
    return path


@pytest.fixture
def server_config(tmp_path: Path, ledger_path: Path) -> ServerConfig:
    return ServerConfig.from_file(write_config(tmp_path, ledger_path), environ={})


@pytest.fixture
def redis_client() -> Any:
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def make_app(server_config: ServerConfig, redis_client: Any) -> Callable[..., Flask]:
    def make(**overrides: Any) -> Flask:
        settings = {"FABMETER": server_config, "REDIS": redis_client, "TESTING": True,
                    "WTF_CSRF_ENABLED": False, "SSE_LIFETIME_S": 0.3, "SSE_BLOCK_MS": 50}  # fmt: skip
        return create_app(settings | overrides)

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """A session on the app's ledger, for arranging and checking what the pages did."""
    with app.extensions["fabmeter.store"].session() as session:
        yield session


def login(client: FlaskClient, username: str = "alice", password: str = PASSWORD) -> Any:
    return client.post("/login", data={"username": username, "password": password})


@pytest.fixture
def admin(client: FlaskClient) -> FlaskClient:
    assert login(client, "alice").status_code == 302
    return client


@pytest.fixture
def staff(client: FlaskClient) -> FlaskClient:
    assert login(client, "bob").status_code == 302
    return client
