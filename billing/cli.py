"""``fabmeter billing`` (the service) and ``fabmeter db upgrade`` (migrations)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import click

from billing.config import ConfigError, ServerConfig
from billing.errors import BillingError
from broker.services import stop_on_signals

log = logging.getLogger(__name__)

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=Path("/etc/fabmeter/server.toml"),
    show_default=True,
    help="The server's TOML configuration.",
)


def load_config(path: Path) -> ServerConfig:
    try:
        return ServerConfig.from_file(path, environ=os.environ)
    except ConfigError as err:
        raise click.ClickException(str(err)) from err


@click.group()
def db() -> None:
    """Database migrations: fabmeter db upgrade."""


@db.command("upgrade")
@CONFIG_OPTION
@click.option("--revision", default="head", show_default=True, help="Alembic revision to reach.")
def upgrade_command(config_path: Path, revision: str) -> None:
    """Create or migrate the ledger's tables to the latest version."""
    from billing.database import upgrade

    config = load_config(config_path)
    try:
        upgrade(config.database_url, revision)
    except BillingError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"database at revision {revision}")


@click.command()
@CONFIG_OPTION
@click.option("--upgrade/--no-upgrade", default=True, show_default=True,
              help="Migrate the database to the latest version before starting.")
def billing(config_path: Path, upgrade: bool) -> None:
    """Run the billing service: ingest, pricing, authorization, live state."""
    from billing.database import upgrade as upgrade_database
    from billing.service import BillingService

    config = load_config(config_path)
    try:
        if upgrade:
            upgrade_database(config.database_url)
        service = BillingService(config)
    except BillingError as err:
        raise click.ClickException(str(err)) from err
    stop = threading.Event()
    stop_on_signals(stop)
    service.start()
    log.info("billing running with %s", config_path)
    service.run(stop)
    log.info("billing stopping")
    service.stop()
