"""``fabmeter billing`` (the service), ``fabmeter db upgrade`` (migrations) and ``fabmeter setup``."""

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


@click.command("setup")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--registry", type=click.Path(path_type=Path), required=True,
              help="site.toml listing [[agents]] and their machines (deploy/site.example.toml).")
@click.option("--listen", default="0.0.0.0:1883", show_default=True, help="HOST:PORT the broker listens on.")
@click.option("--run-as", default=None, help="System user mosquitto switches to; owns FOLDER/mosquitto.")
@click.option("--group", default=None, help="Group of the services' user, allowed to read FOLDER/secrets.")
@click.option("--tls-cert", type=click.Path(path_type=Path), help="Broker certificate (enables TLS).")
@click.option("--tls-key", type=click.Path(path_type=Path), help="Broker private key.")
def setup(folder: Path, registry: Path, listen: str, run_as: str | None, group: str | None,
          tls_cert: Path | None, tls_key: Path | None) -> None:  # fmt: skip
    """Make a server's secrets (pepper, dashboard key, ledger key, broker passwords) and Mosquitto's
    files in FOLDER (e.g. /etc/fabmeter), where deploy/server.example.toml expects them. Secrets
    that exist are kept; run it again after adding an agent to the registry."""
    from billing.setup import write_server_files
    from broker.errors import BrokerError
    from broker.registry import TLSFiles, parse_listen, read_registry

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    try:
        written = write_server_files(
            folder, read_registry(registry), listen=parse_listen(listen), run_as=run_as, group=group,
            tls=TLSFiles(tls_cert, tls_key) if tls_cert and tls_key else None,
        )  # fmt: skip
    except (BrokerError, LookupError, PermissionError) as err:  # LookupError: no such user or group
        raise click.ClickException(str(err)) from err
    for path in written:
        click.echo(f"{path}")
    click.echo(f"next: copy deploy/server.example.toml to {folder.resolve() / 'server.toml'} and edit it")
