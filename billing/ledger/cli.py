"""``fabmeter ledger``: verify the hash chains, close days and months, export, reprint.

fabmeter ledger verify
fabmeter ledger close-day --date 2026-11-26
fabmeter ledger close-month --month 2026-11
fabmeter ledger export --from 2026-11-01 --to 2026-11-30 --output novembre.csv
fabmeter ledger reprint R-000012
fabmeter ledger credit R-000012 --reason "une plaque rendue" --line 2=1
fabmeter ledger archive --year 2026 --output archive-2026.json
fabmeter ledger verify-archive archive-2026.json --key FINGERPRINT
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import chain, islice
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from billing.cli import CONFIG_OPTION, load_config
from billing.config import ServerConfig
from billing.database import make_engine
from billing.errors import BillingError
from billing.ledger.documents import Closure, Document, PrintJob
from billing.ledger.events import Event
from billing.ledger.seals import LEDGER_KEY
from billing.models import utcnow

TIMEZONE_OPTION = click.option(
    "--timezone", "tz_name", default=None,
    help="Where a day or a month begins and ends (default: [organisation] timezone).",
)  # fmt: skip
ACTOR_OPTION = click.option("--actor", default=None, help="Who does it (default: the system user).")


@contextmanager
def _ledger(config: ServerConfig) -> Iterator[Session]:
    """A session that seals what it writes with the ledger key; errors become clear messages."""
    engine = make_engine(config.database_url)
    info = {LEDGER_KEY: config.ledger_key} if config.ledger_key else {}
    try:
        with Session(engine, expire_on_commit=False, info=info) as db:
            yield db
    except BillingError as err:
        raise click.ClickException(str(err)) from err
    except SQLAlchemyError as err:
        raise click.ClickException(f"the ledger cannot be read: {err.__class__.__name__}: {_first_line(err)}") from err
    finally:
        engine.dispose()


def _first_line(err: Exception) -> str:
    return str(getattr(err, "orig", None) or err).splitlines()[0]


def _integrity(db: Session) -> str | None:
    """SQLite's own check of its pages and indexes: None when it says ok."""
    if db.get_bind().dialect.name != "sqlite":
        return None
    answers = [row[0] for row in db.execute(text("PRAGMA integrity_check"))]
    return None if answers == ["ok"] else "; ".join(answers[:5])


def _zone(name: str | None, config: ServerConfig) -> ZoneInfo:
    if name is None:
        return config.organisation.zone
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
@click.option("--ticket", "tickets", multiple=True, metavar="YYYY-MM-DD=EMPREINTE",
              help="Compare a printed Z ticket's EMPREINTE with that day's closure. Repeatable.")  # fmt: skip
def verify(config_path: Path, show_all: bool, tickets: tuple[str, ...]) -> None:
    """Recompute every document's and closure's hash; name the first broken link."""
    from billing.ledger.chain import problems

    config = load_config(config_path)
    with _ledger(config) as db:
        damaged = _integrity(db)
        if damaged:
            click.echo(f"BROKEN database: PRAGMA integrity_check says {damaged}", err=True)
            sys.exit(1)
        if config.ledger_key is None:
            click.echo("warning: no ledger_key_file in the configuration: seals are not checked", err=True)
        found_all = chain(_ticket_problems(db, [_ticket(t) for t in tickets]),
                          problems(db, key=config.ledger_key, anchors=config.anchor_file))  # fmt: skip
        found = list(found_all) if show_all else list(islice(found_all, 1))
        if found:
            for broken in found:
                click.echo(f"BROKEN {broken}", err=True)
            sys.exit(1)
        documents = db.scalar(select(func.count(Document.id)))
        closures = db.scalar(select(func.count(Closure.id)))
        events = db.scalar(select(func.count(Event.id)))
    click.echo(f"ledger intact: {documents} documents, {closures} closures and {events} events verified")


def _ticket(text: str) -> tuple[str, str]:
    day, _, digest = text.partition("=")
    try:
        datetime.strptime(day.strip(), "%Y-%m-%d")
    except ValueError as err:
        raise click.BadParameter(f"{text!r}: the day is YYYY-MM-DD (e.g. 2026-11-26=1a2b 3c4d)",
                                 param_hint="--ticket") from err  # fmt: skip
    cleaned = digest.replace(" ", "").lower()
    if len(cleaned) < 8 or any(c not in "0123456789abcdef" for c in cleaned):
        raise click.BadParameter(f"{text!r}: give the EMPREINTE printed on the ticket (8 to 64 hex digits)",
                                 param_hint="--ticket")  # fmt: skip
    return day.strip(), cleaned


def _ticket_problems(db: Session, tickets: list[tuple[str, str]]) -> Iterator[str]:
    for day, digest in tickets:
        closure = db.scalars(select(Closure).where(Closure.kind == "day", Closure.period == day)).first()
        if closure is None:
            yield f"closure day {day}: a Z ticket was printed for it, the ledger holds no such closure"
        elif not closure.hash.startswith(digest):
            yield (f"closure day {day}: the Z ticket says EMPREINTE {digest}, the ledger holds "
                   f"{closure.hash[: len(digest)]} (rewritten since it was printed)")  # fmt: skip


@ledger.command("close-day")
@CONFIG_OPTION
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The day to close (default: yesterday).")  # fmt: skip
@TIMEZONE_OPTION
@ACTOR_OPTION
@click.option("--print", "to_printer", is_flag=True, help="Print the Z ticket on the receipt printer.")
def close_day_command(
    config_path: Path, day: datetime | None, tz_name: str | None, actor: str | None, to_printer: bool
) -> None:
    """Record a finished day's totals per payment method and the grand total."""
    from billing.ledger.chain import close_day, previous_day

    config = load_config(config_path)
    tz = _zone(tz_name, config)
    chosen = day.date() if day else previous_day(utcnow(), tz)
    with _ledger(config) as db:
        closure = close_day(db, chosen, tz=tz, actor=_actor(actor), anchors=config.anchor_file)
        _report(closure)
    if to_printer:
        from billing.ledger.printing import EscposTransport, render_closure

        ticket = render_closure(closure, config.organisation.name, columns=config.printer.columns)
        try:
            EscposTransport(config.printer).send(ticket)
        except BillingError as err:
            raise click.ClickException(f"day {closure.period} closed, but its Z ticket was not printed: {err}") from err
        click.echo("printed the Z ticket")


@ledger.command("close-month")
@CONFIG_OPTION
@click.option("--month", type=click.DateTime(["%Y-%m"]), default=None,
              help="The month to close, YYYY-MM (default: last month).")  # fmt: skip
@TIMEZONE_OPTION
@ACTOR_OPTION
def close_month_command(
    config_path: Path, month: datetime | None, tz_name: str | None, actor: str | None
) -> None:
    """Record a finished month's totals per payment method and the grand total."""
    from billing.ledger.chain import close_month, previous_month

    config = load_config(config_path)
    tz = _zone(tz_name, config)
    year, number = (month.year, month.month) if month else previous_month(utcnow(), tz)
    with _ledger(config) as db:
        closure = close_month(db, year, number, tz=tz, actor=_actor(actor), anchors=config.anchor_file)
        _report(closure)


@ledger.command("close-year")
@CONFIG_OPTION
@click.option("--year", type=click.IntRange(2000, 9999), default=None,
              help="The fiscal (calendar) year to close (default: last year).")  # fmt: skip
@TIMEZONE_OPTION
@ACTOR_OPTION
def close_year_command(
    config_path: Path, year: int | None, tz_name: str | None, actor: str | None
) -> None:
    """Record a finished fiscal year's totals per payment method and the grand total."""
    from billing.ledger.chain import close_year

    config = load_config(config_path)
    tz = _zone(tz_name, config)
    chosen = year if year is not None else utcnow().astimezone(tz).year - 1
    with _ledger(config) as db:
        closure = close_year(db, chosen, tz=tz, actor=_actor(actor), anchors=config.anchor_file)
        _report(closure)


def _report(closure: Closure) -> None:
    from billing.ledger.chain import load
    from billing.presentation import cents_text, payment_label

    totals = load(closure.content)["totals"]
    click.echo(f"closed {closure.kind} {closure.period} (n° {closure.number})")
    for method, cents in sorted(totals.items()):
        click.echo(f"  {payment_label(method)}: {cents_text(cents)}")
    click.echo(f"  total: {cents_text(closure.total_cents)}")
    click.echo(f"  grand total: {cents_text(closure.grand_total_cents)}")
    from billing.ledger.printing import fingerprint_text

    click.echo(f"  EMPREINTE {fingerprint_text(closure.hash)}")  # on the Z ticket: verify --ticket


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
           tz_name: str | None) -> None:  # fmt: skip
    """A ';'-separated CSV of documents and lines for the accountant."""
    from billing.ledger.export import export_csv

    config = load_config(config_path)
    tz = _zone(tz_name, config)
    with _ledger(config) as db:
        text = export_csv(db, first.date(), last.date() + timedelta(days=1), tz=tz, by=by)
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
    from billing.ledger.printing import reprint as queue_reprint

    config = load_config(config_path)
    with _ledger(config) as db:
        document = _document(db, reference)
        job = queue_reprint(db, document.id, actor=_actor(actor))
        db.commit()
        job = _print_now(db, job.id, config)
        if job.status == "pending":  # a dashboard's spooler claimed it first: it prints it
            click.echo(f"{reference} (DUPLICATA n° {job.copy}) is being printed by the dashboard")
        elif job.status != "done":
            raise click.ClickException(
                f"{reference} duplicate n° {job.copy} not printed: {job.error}"
            )
        else:
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
    from billing.ledger.receipts import issue_credit_note
    from billing.money import parse_decimal

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
        job = _print_now(db, job.id, config)
        if job.status == "failed":
            raise click.ClickException(f"{note.reference} issued but not printed: {job.error}")
        click.echo(f"printed {note.reference}" if job.status == "done"
                   else f"{note.reference} is being printed by the dashboard")  # fmt: skip


def _print_now(db: Session, job_id: int, config: ServerConfig) -> PrintJob:
    """Claim and print a job here, unless a dashboard's spooler claimed it first (then it prints it)."""
    from billing.ledger.printing import EscposTransport, run_job

    return run_job(db, job_id, EscposTransport(config.printer), columns=config.printer.columns,
                   tz=config.organisation.zone, claim_timeout_s=config.printer.claim_timeout_s)  # fmt: skip


@ledger.command()
@CONFIG_OPTION
@click.option("--year", type=click.IntRange(2000, 9999), required=True, help="The fiscal year to archive.")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The archive file (default: fabmeter-archive-YEAR.json).")  # fmt: skip
@TIMEZONE_OPTION
def archive(config_path: Path, year: int, output: Path | None, tz_name: str | None) -> None:
    """Write the year's documents, closures and events in one signed file (Ed25519)."""
    from billing.ledger.archive import build, sign

    config = load_config(config_path)
    if config.archive_key is None:
        raise click.ClickException(
            f"no archive_key_file in {config_path}: create the key with "
            "'openssl genpkey -algorithm ed25519 -out secrets/archive.key' and name it there"
        )
    with _ledger(config) as db:
        text = sign(build(db, year, tz=_zone(tz_name, config)), config.archive_key)
    target = output or Path(f"fabmeter-archive-{year}.json")
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}; public key fingerprint {json.loads(text)['fingerprint']} (keep it apart)")


@ledger.command("verify-archive")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--key", "expected", default=None, metavar="FINGERPRINT",
              help="The fingerprint kept apart when the archive was made: refuse any other key.")  # fmt: skip
def verify_archive(file: Path, expected: str | None) -> None:
    """Check an archive without fabmeter's database: signature, every chain, closures' totals."""
    from billing.ledger.archive import archive_problems

    try:
        parsed = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise click.ClickException(f"{file} is not a fabmeter archive (JSON): {err}") from err
    found = archive_problems(parsed, expected=expected)
    for problem in found:
        click.echo(f"BROKEN {problem}", err=True)
    if found:
        sys.exit(1)
    data = parsed["archive"]
    if expected is None:
        click.echo(f"warning: no --key given: signed by key {parsed['fingerprint']}, compare it", err=True)
    click.echo(f"archive {data['year']} intact: {len(data['documents'])} documents, "
               f"{len(data['closures'])} closures and {len(data['events'])} events verified")  # fmt: skip


def _document(db: Session, reference: str) -> Document:
    series, _, number = reference.strip().upper().partition("-")
    if not number.isdigit():
        raise click.BadParameter(f"{reference!r} is not a document number like R-000012")
    query = select(Document).where(Document.series == series, Document.number == int(number))
    document = db.scalars(query).first()
    if document is None:
        raise click.ClickException(f"no document {reference}")
    return document
