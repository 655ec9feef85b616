"""``fabmeter ledger``: verify the hash chains, close days and months, export, reprint.

fabmeter ledger verify
fabmeter ledger close-day --date 2026-11-26
fabmeter ledger close-month --month 2026-11
fabmeter ledger export --from 2026-11-01 --to 2026-11-30 --output novembre.csv
fabmeter ledger reprint R-000012
fabmeter ledger credit R-000012 --reason "une plaque rendue" --line 2=1
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.cli import CONFIG_OPTION, load_config
from billing.config import ServerConfig
from billing.database import make_engine
from billing.documents import Closure, Document
from billing.errors import BillingError
from billing.models import utcnow

TIMEZONE_OPTION = click.option(
    "--timezone", "tz_name", default="Europe/Paris", show_default=True,
    help="The fablab's time zone: where a day or a month begins and ends.",
)  # fmt: skip
ACTOR_OPTION = click.option("--actor", default=None, help="Who does it (default: the system user).")


@contextmanager
def _ledger(config: ServerConfig) -> Iterator[Session]:
    engine = make_engine(config.database_url)
    try:
        with Session(engine, expire_on_commit=False) as db:
            yield db
    except BillingError as err:
        raise click.ClickException(str(err)) from err
    finally:
        engine.dispose()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise click.BadParameter(f"unknown time zone {name!r} (e.g. Europe/Paris)") from err


def _actor(actor: str | None) -> str:
    return actor or getpass.getuser()


@click.group()
def ledger() -> None:
    """Receipts ledger: verify the hash chain, closures, accounting export."""


@ledger.command()
@CONFIG_OPTION
@click.option("--all", "show_all", is_flag=True, help="List every broken link, not only the first.")
def verify(config_path: Path, show_all: bool) -> None:
    """Recompute every document's and closure's hash; name the first broken link."""
    from billing.ledger import problems

    with _ledger(load_config(config_path)) as db:
        found = list(problems(db)) if show_all else list(islice(problems(db), 1))
        if found:
            for broken in found:
                click.echo(f"BROKEN {broken}", err=True)
            sys.exit(1)
        documents = db.scalar(select(func.count(Document.id)))
        closures = db.scalar(select(func.count(Closure.id)))
    click.echo(f"ledger intact: {documents} documents and {closures} closures verified")


@ledger.command("close-day")
@CONFIG_OPTION
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The day to close (default: yesterday).")  # fmt: skip
@TIMEZONE_OPTION
@ACTOR_OPTION
def close_day_command(
    config_path: Path, day: datetime | None, tz_name: str, actor: str | None
) -> None:
    """Record a finished day's totals per payment method and the grand total."""
    from billing.ledger import close_day

    tz = _zone(tz_name)
    chosen = day.date() if day else (utcnow().astimezone(tz).date() - timedelta(days=1))
    with _ledger(load_config(config_path)) as db:
        closure = close_day(db, chosen, tz=tz, actor=_actor(actor))
        _report(closure)


@ledger.command("close-month")
@CONFIG_OPTION
@click.option("--month", type=click.DateTime(["%Y-%m"]), default=None,
              help="The month to close, YYYY-MM (default: last month).")  # fmt: skip
@TIMEZONE_OPTION
@ACTOR_OPTION
def close_month_command(
    config_path: Path, month: datetime | None, tz_name: str, actor: str | None
) -> None:
    """Record a finished month's totals per payment method and the grand total."""
    from billing.ledger import close_month

    tz = _zone(tz_name)
    chosen = (
        month.date() if month else utcnow().astimezone(tz).date().replace(day=1) - timedelta(days=1)
    )
    with _ledger(load_config(config_path)) as db:
        closure = close_month(db, chosen.year, chosen.month, tz=tz, actor=_actor(actor))
        _report(closure)


def _report(closure: Closure) -> None:
    from billing.ledger import load
    from billing.presentation import cents_text, payment_label

    totals = load(closure.content)["totals"]
    click.echo(f"closed {closure.kind} {closure.period} (n° {closure.number})")
    for method, cents in sorted(totals.items()):
        click.echo(f"  {payment_label(method)}: {cents_text(cents)}")
    click.echo(f"  total: {cents_text(closure.total_cents)}")
    click.echo(f"  grand total: {cents_text(closure.grand_total_cents)}")


@ledger.command()
@CONFIG_OPTION
@click.option(
    "--from", "first", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First day."
)
@click.option(
    "--to", "last", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Last day (included)."
)
@click.option("--by", type=click.Choice(["machine", "category"]), default="machine", show_default=True,
              help="Sales accounts per machine or per customer category.")  # fmt: skip
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the CSV here (UTF-8 with BOM) instead of the standard output.")  # fmt: skip
@TIMEZONE_OPTION
def export(config_path: Path, first: datetime, last: datetime, by: str, output: Path | None,
           tz_name: str) -> None:  # fmt: skip
    """A ';'-separated CSV of documents and lines for the accountant."""
    from billing.export import export_csv

    with _ledger(load_config(config_path)) as db:
        text = export_csv(
            db, first.date(), last.date() + timedelta(days=1), tz=_zone(tz_name), by=by
        )
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8-sig", newline="")
    click.echo(f"wrote {len(text.splitlines()) - 1} lines to {output}")


@ledger.command()
@CONFIG_OPTION
@click.argument("reference")
@ACTOR_OPTION
def reprint(config_path: Path, reference: str, actor: str | None) -> None:
    """Print a duplicate of a document now (e.g. R-000012)."""
    from billing.printing import EscposTransport, run_job
    from billing.printing import reprint as queue_reprint

    config = load_config(config_path)
    with _ledger(config) as db:
        document = _document(db, reference)
        job = queue_reprint(db, document.id, actor=_actor(actor))
        db.commit()
        job = run_job(db, job.id, EscposTransport(config.printer), columns=config.printer.columns)
        if job.status != "done":
            raise click.ClickException(
                f"{reference} duplicate n° {job.copy} not printed: {job.error}"
            )
        click.echo(f"printed {reference} (DUPLICATA n° {job.copy})")


@ledger.command()
@CONFIG_OPTION
@click.argument("reference")
@click.option("--reason", required=True, help="Why the money goes back (printed on the note).")
@click.option("--line", "chosen", multiple=True, metavar="N=QTY",
              help="Give back QTY of line N (1 = the first line; QTY as typed: 1 or 0,5). "
                   "Repeatable. Without it: all that is left of the document.")  # fmt: skip
@click.option("--method", default=None, help="How the money goes back (default: as it was paid).")
@ACTOR_OPTION
def credit(config_path: Path, reference: str, reason: str, chosen: tuple[str, ...], method: str | None,
           actor: str | None) -> None:  # fmt: skip
    """Issue a credit note (series A) on a closed document, whole or for chosen lines, and print it."""
    from billing.documents import PrintJob
    from billing.money import parse_decimal
    from billing.printing import EscposTransport, run_job
    from billing.receipts import issue_credit_note

    lines = {}
    for item in chosen:
        position, _, quantity = item.partition("=")
        try:
            if not position.strip().isdigit() or int(position) < 1:
                raise ValueError("the line is its number on the document, from 1")
            lines[int(position) - 1] = parse_decimal(quantity, places=3)
        except ValueError as err:
            raise click.BadParameter(f"{item!r}: {err} (e.g. --line 2=1)", param_hint="--line") from err
    config = load_config(config_path)
    with _ledger(config) as db:
        document = _document(db, reference)
        note = issue_credit_note(db, document.id, reason, actor=_actor(actor), lines=lines or None,
                                 method=method)  # fmt: skip
        job = PrintJob(document=note, copy=0, requested_by=note.issued_by)
        db.add(job)
        db.commit()
        click.echo(f"issued {note.reference} on {reference}")
        job = run_job(db, job.id, EscposTransport(config.printer), columns=config.printer.columns)
        if job.status != "done":
            raise click.ClickException(f"{note.reference} issued but not printed: {job.error}")
        click.echo(f"printed {note.reference}")


def _document(db: Session, reference: str) -> Document:
    series, _, number = reference.strip().upper().partition("-")
    if not number.isdigit():
        raise click.BadParameter(f"{reference!r} is not a document number like R-000012")
    query = select(Document).where(Document.series == series, Document.number == int(number))
    document = db.scalars(query).first()
    if document is None:
        raise click.ClickException(f"no document {reference}")
    return document
