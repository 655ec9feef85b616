"""Shared fixtures: private mosquitto and redis-server processes, and a database URL.

``FABMETER_DATABASE_URL`` selects PostgreSQL for the database tests; otherwise each test gets
a SQLite file in its own temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.services import PrivateMosquitto, PrivateRedis


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    """An anonymous private broker; ``mosquitto.kill()`` then ``.start()`` restarts it."""
    broker = PrivateMosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.kill()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return os.environ.get("FABMETER_DATABASE_URL") or f"sqlite:///{tmp_path / 'fabmeter.db'}"
