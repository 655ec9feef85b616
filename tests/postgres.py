"""A fresh PostgreSQL schema per test, where a server answers; skipped otherwise.

    with fresh_schema() as url:      # postgresql+psycopg://…?options=-csearch_path%3Dt_1a2b…
        upgrade(url)

``FABMETER_DATABASE_URL`` names the server when it is a PostgreSQL URL; otherwise the loopback
one with trust auth. The schema is dropped afterwards, so runs never collide.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from billing.database import make_engine

DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    url = os.environ.get("FABMETER_DATABASE_URL", "")
    return url if url.startswith("postgresql") else DEFAULT


@functools.cache
def reachable() -> bool:
    engine = make_engine(server_url(), connect_args={"connect_timeout": 2})
    try:
        with engine.connect():
            return True
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()


@contextmanager
def fresh_schema() -> Iterator[str]:
    if not reachable():
        pytest.skip(f"no PostgreSQL at {server_url()}")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(server_url())
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{server_url()}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
