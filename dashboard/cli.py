"""``fabmeter dashboard`` (the development server) and ``fabmeter admin create-user``.

Production serves ``dashboard:create_app()`` with gunicorn's gthread workers
(deploy/systemd/fabmeter-dashboard.service).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from billing.cli import CONFIG_OPTION, load_config
from billing.config import ServerConfig
from billing.errors import BillingError
from dashboard.errors import SetupError


@click.command()
@CONFIG_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port.")
def dashboard(config_path: Path, host: str, port: int) -> None:
    """Serve the staff dashboard (threaded development server; use gunicorn in production)."""
    from dashboard import create_app

    os.environ["FABMETER_CONFIG"] = str(config_path)
    try:
        app = create_app()
    except SetupError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"dashboard on http://{host}:{port}/ (config {config_path})")
    app.run(host=host, port=port, threaded=True, use_reloader=False)


def _sealing(config: ServerConfig) -> dict[str, str]:
    """A session's info that seals the events it chains (a login account made, a person erased)."""
    from billing.ledger.seals import LEDGER_KEY

    return {LEDGER_KEY: config.ledger_key} if config.ledger_key else {}


@click.group()
def admin() -> None:
    """Administration: staff users, loading a site file, erasing a person."""


@admin.command("create-user")
@CONFIG_OPTION
@click.option("--username", required=True, help="Login name (lowercase letters, digits, . _ -).")
@click.option("--role", type=click.Choice(["staff", "admin"]), default="staff", show_default=True)
@click.option("--password-file", type=click.File("r"), default=None,
              help="Read the password from this file (first line) instead of prompting.")  # fmt: skip
def create_user_command(config_path: Path, username: str, role: str, password_file: click.File | None) -> None:
    """Create a staff user (the first admin, typically); migrates the database first."""
    from sqlalchemy.orm import Session

    from billing.database import make_engine, upgrade
    from dashboard.staff import create_user

    config = load_config(config_path)
    if password_file is not None:
        password = password_file.readline().rstrip("\r\n")  # type: ignore[attr-defined]
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        upgrade(config.database_url)
        engine = make_engine(config.database_url)
        with Session(engine, info=_sealing(config)) as db:
            user = create_user(db, username, password, role=role, actor="cli")
            db.commit()
            click.echo(f"created {role} {user.username!r}")
        engine.dispose()
    except BillingError as err:
        raise click.ClickException(str(err)) from err


@admin.command("load")
@click.argument("site_file", type=click.Path(path_type=Path))
@CONFIG_OPTION
def load_command(site_file: Path, config_path: Path) -> None:
    """Load machines, materials, categories, catalogue items and tariffs from SITE_FILE (TOML, see
    deploy/site.example.toml); loading it again changes only what differs. Migrates first."""
    from sqlalchemy.orm import Session

    from billing.database import make_engine, upgrade
    from billing.site import load_site

    config = load_config(config_path)
    try:
        upgrade(config.database_url)
        engine = make_engine(config.database_url)
        with Session(engine, info=_sealing(config)) as db:
            changes = load_site(db, site_file, actor="cli")
            db.commit()
        engine.dispose()
    except BillingError as err:
        raise click.ClickException(str(err)) from err
    for change in changes:
        click.echo(change)
    click.echo(f"{site_file}: {len(changes)} change(s)" if changes else f"{site_file}: nothing to change")


@admin.command("erase")
@CONFIG_OPTION
@click.option("--customer", "ref", default=None, help="A customer's reference (e.g. C-4F2A9).")
@click.option("--visit", "visit_id", type=int, default=None, help="A named walk-in's visit number.")
def erase_command(config_path: Path, ref: str | None, visit_id: int | None) -> None:
    """Erase a person's name and details; receipts, totals and the hash chain stay intact."""
    from sqlalchemy.orm import Session

    from billing.customers import erase_customer, erase_visit_name
    from billing.database import make_engine

    if (ref is None) == (visit_id is None):
        raise click.UsageError("give either --customer or --visit")
    config = load_config(config_path)
    engine = make_engine(config.database_url)
    try:
        with Session(engine, info=_sealing(config)) as db:
            if ref is not None:
                erase_customer(db, ref, actor="cli")
            else:
                erase_visit_name(db, visit_id or 0, actor="cli")
            db.commit()
    except BillingError as err:
        raise click.ClickException(str(err)) from err
    finally:
        engine.dispose()
    click.echo(f"erased {'customer ' + ref if ref else f'the name of visit {visit_id}'}")


@admin.command("locks")
@CONFIG_OPTION
def locks_command(config_path: Path) -> None:
    """List PIN pads slowed down by wrong PINs and credentials locked after refusals."""
    from sqlalchemy.orm import Session

    from billing.credentials import locked_credentials
    from billing.database import make_engine
    from billing.lockouts import slowed_terminals
    from billing.models import utcnow

    engine = make_engine(load_config(config_path).database_url)
    with Session(engine) as db:
        for terminal, (until, failures) in slowed_terminals(db, utcnow()).items():
            click.echo(
                f"terminal {terminal}: ignores PINs until {until:%Y-%m-%d %H:%M:%S} UTC ({failures} wrong PINs)"
            )
        for credential in locked_credentials(db):
            click.echo(
                f"credential {credential.id}: the {credential.kind} of visit {credential.visit_id} is locked"
            )
    engine.dispose()


@admin.command("unlock")
@CONFIG_OPTION
@click.option(
    "--terminal", default=None, help="A machine id whose PIN pad should listen again now."
)
@click.option(
    "--credential", "credential_id", type=int, default=None, help="A locked credential's number."
)
@click.option(
    "--actor",
    default=os.environ.get("USER", "cli"),
    show_default=True,
    help="Who, for the audit log.",
)
def unlock_command(
    config_path: Path, terminal: str | None, credential_id: int | None, actor: str
) -> None:
    """Lift a PIN pad's wait or unlock a credential (audited)."""
    from sqlalchemy.orm import Session

    from billing.credentials import unlock_credential
    from billing.database import make_engine
    from billing.lockouts import lift

    if (terminal is None) == (credential_id is None):
        raise click.UsageError("give either --terminal or --credential")
    engine = make_engine(load_config(config_path).database_url)
    try:
        with Session(engine) as db:
            if terminal is not None:
                lift(db, terminal, actor=actor)
            else:
                unlock_credential(db, credential_id or 0, actor)
            db.commit()
    except BillingError as err:
        raise click.ClickException(str(err)) from err
    finally:
        engine.dispose()
    click.echo(f"unlocked {'terminal ' + terminal if terminal else f'credential {credential_id}'}")
