from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Engine, inspect

from billing.models import Base
from fabmeter import main


def test_migrations_build_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_fabmeter_db_upgrade_creates_the_tables(tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text("p")
    config = tmp_path / "server.toml"
    config.write_text('database_url = "sqlite:///ledger.db"\npepper_file = "pepper"\n'
                      '[organisation]\nname = "L"\naddress = "A"\nsiret = "1"\n')
    result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)], env={})
    assert result.exit_code == 0, result.output
    from billing.database import make_engine

    tables = set(inspect(make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")).get_table_names())
    assert {"visits", "charge_lines", "inbox_events", "tariff_versions", "staff_users"} <= tables


def test_bad_config_is_a_clear_cli_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(tmp_path / "no.toml")])
    assert result.exit_code != 0
    assert "does not exist" in result.output


def test_sqlite_commits_are_durable_before_billing_acks_them(tmp_path: Path) -> None:
    """WAL with synchronous=FULL: an acked event survives a power cut at the server."""
    from sqlalchemy import text

    from billing.database import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'durable.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
