"""Daily and monthly closures, the accountant's export, and the ``fabmeter ledger`` command."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from billing.errors import InvalidOperation
from billing.ledger.chain import (
    close_day,
    close_month,
    close_year,
    day_period,
    previous_day,
    previous_month,
    verify,
)
from billing.ledger.export import account, export_csv
from billing.ledger.receipts import close_with_receipt, issue_credit_note
from fabmeter import main
from tests.receipts.conftest import ORG, company_visit, walk_in

PARIS = ZoneInfo("Europe/Paris")
D1 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 17:00 in Paris
D2 = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)  # 23:30 in Paris, still the 26th
LATER = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _november(db: Session) -> None:
    close_with_receipt(
        db, walk_in(db, ("plywood-3mm", "2")), "cash", actor="a", organisation=ORG, now=D1
    )
    card = close_with_receipt(
        db, walk_in(db, ("plywood-5mm", "1")), "card", actor="a", organisation=ORG, now=D1
    )
    close_with_receipt(db, company_visit(db), "transfer", actor="a", organisation=ORG, now=D2)
    issue_credit_note(db, card.id, "erreur", actor="b", now=D2)


def test_days_and_months_record_totals_per_method_and_a_grand_total(db: Session) -> None:
    _november(db)
    first = close_day(db, date(2026, 11, 25), tz=PARIS, actor="alice", now=LATER)
    second = close_day(db, date(2026, 11, 26), tz=PARIS, actor="alice", now=LATER)
    month = close_month(db, 2026, 11, tz=PARIS, actor="alice", now=LATER)
    db.commit()
    assert json.loads(first.content)["totals"] == {"cash": 900, "card": 600}
    assert (first.total_cents, first.grand_total_cents) == (1500, 1500)
    assert json.loads(second.content)["totals"] == {"transfer": 3300, "card": -600}
    assert (second.total_cents, second.grand_total_cents) == (2700, 4200)
    assert json.loads(month.content)["totals"] == {"cash": 900, "card": 0, "transfer": 3300}
    assert (month.total_cents, month.grand_total_cents, json.loads(month.content)["documents"]) == (
        4200,
        4200,
        4,
    )
    assert second.prev_hash == first.hash and month.number == 1
    assert verify(db) is None


def _receipt_at(db: Session, moment: datetime) -> None:
    visit = walk_in(db, ("plywood-3mm", "1"), opened=moment)
    close_with_receipt(db, visit, "cash", actor="a", organisation=ORG, now=moment)


# Europe/Paris: CEST → CET on 2026-10-25 (a 25-hour day), CET → CEST on 2026-03-29 (23 hours).
@pytest.mark.parametrize(
    ("day", "inside", "outside", "hours"),
    [
        # 23:30 is still the day; 00:05 is the next one (UTC would put both on the same day)
        (date(2026, 11, 26), datetime(2026, 11, 26, 22, 30, tzinfo=UTC),
         datetime(2026, 11, 26, 23, 5, tzinfo=UTC), 24),
        # the last day of a month, and of a year
        (date(2026, 12, 31), datetime(2026, 12, 31, 22, 30, tzinfo=UTC),
         datetime(2026, 12, 31, 23, 5, tzinfo=UTC), 24),
        (date(2026, 3, 29), datetime(2026, 3, 29, 21, 30, tzinfo=UTC),
         datetime(2026, 3, 29, 22, 5, tzinfo=UTC), 23),
        (date(2026, 10, 25), datetime(2026, 10, 25, 22, 30, tzinfo=UTC),
         datetime(2026, 10, 25, 23, 5, tzinfo=UTC), 25),
    ],
)  # fmt: skip
def test_a_day_closure_takes_the_local_day_even_the_nights_the_clocks_change(
    db: Session, day: date, inside: datetime, outside: datetime, hours: int
) -> None:
    period = day_period(day, PARIS)
    assert (period.end - period.start).total_seconds() == hours * 3600
    _receipt_at(db, inside)
    _receipt_at(db, outside)
    closure = close_day(db, day, tz=PARIS, actor="alice", now=datetime(2027, 1, 2, tzinfo=UTC))
    assert json.loads(closure.content)["documents"] == 1 and closure.total_cents == 450


@pytest.mark.parametrize(
    ("now", "yesterday", "last_month"),
    [
        (datetime(2026, 11, 26, 23, 5, tzinfo=UTC), date(2026, 11, 26), (2026, 10)),  # 00:05 on the 27th
        (datetime(2026, 11, 26, 22, 30, tzinfo=UTC), date(2026, 11, 25), (2026, 10)),  # 23:30: not over
        (datetime(2026, 11, 30, 23, 5, tzinfo=UTC), date(2026, 11, 30), (2026, 11)),  # 00:05 on 1 December
        (datetime(2026, 12, 31, 23, 5, tzinfo=UTC), date(2026, 12, 31), (2026, 12)),  # 00:05 on 1 January
        (datetime(2026, 3, 29, 22, 5, tzinfo=UTC), date(2026, 3, 29), (2026, 2)),  # after the 23-hour day
        (datetime(2026, 10, 25, 23, 5, tzinfo=UTC), date(2026, 10, 25), (2026, 9)),  # after the 25-hour day
    ],
)  # fmt: skip
def test_a_closure_run_just_after_midnight_closes_the_local_yesterday(
    now: datetime, yesterday: date, last_month: tuple[int, int]
) -> None:
    assert previous_day(now, PARIS) == yesterday
    assert previous_month(now, PARIS) == last_month


def test_a_month_closure_ends_at_local_midnight_on_its_last_day(db: Session) -> None:
    _receipt_at(db, datetime(2026, 11, 30, 22, 30, tzinfo=UTC))  # 23:30 on 30 November in Paris
    _receipt_at(db, datetime(2026, 11, 30, 23, 5, tzinfo=UTC))  # 00:05 on 1 December
    november = close_month(db, 2026, 11, tz=PARIS, actor="alice", now=LATER)
    assert json.loads(november.content)["documents"] == 1


def test_a_day_is_closed_once_and_only_when_over(db: Session) -> None:
    _november(db)
    with pytest.raises(InvalidOperation, match="not over yet"):
        close_day(
            db,
            date(2026, 11, 26),
            tz=PARIS,
            actor="alice",
            now=datetime(2026, 11, 26, 20, tzinfo=UTC),
        )
    db.rollback()
    close_day(db, date(2026, 11, 25), tz=PARIS, actor="alice", now=LATER)
    db.commit()
    with pytest.raises(InvalidOperation, match="already closed"):
        close_day(db, date(2026, 11, 25), tz=PARIS, actor="alice", now=LATER)


def test_a_document_slipped_into_a_closed_day_is_named_by_verify(db: Session) -> None:
    _november(db)
    close_day(db, date(2026, 11, 25), tz=PARIS, actor="alice", now=LATER)
    db.commit()
    close_with_receipt(
        db, walk_in(db, ("mdf-3mm", "1")), "cash", actor="a", organisation=ORG, now=D1
    )
    broken = verify(db)
    assert (
        broken is not None
        and broken.link == "closure day 2026-11-25"
        and "documents" in broken.reason
    )


def test_a_closure_total_altered_in_the_database_is_named(db: Session) -> None:
    _november(db)
    close_day(db, date(2026, 11, 25), tz=PARIS, actor="alice", now=LATER)
    db.commit()
    db.execute(text("UPDATE closures SET grand_total_cents = 1"))
    db.commit()
    broken = verify(db)
    assert broken is not None and broken.link == "closure day 2026-11-25"


def test_the_export_is_semicolon_separated_with_comma_decimals(db: Session) -> None:
    _november(db)
    csv = export_csv(db, date(2026, 11, 1), date(2026, 12, 1), tz=PARIS).splitlines()
    assert csv[0] == "date;numero;type;client;compte;libelle;montant;reglement"
    assert (
        "25/11/2026;R-000001;ticket;;707-plywood-3mm;Contreplaqué peuplier 3 mm 600×300;9,00;cash"
        in csv
    )
    assert (
        "26/11/2026;F-000001;facture;C0007;707-training-laser;Formation découpe laser;15,00;transfer"
        in csv
    )
    assert (
        "26/11/2026;A-000001;avoir;;707-plywood-5mm;Contreplaqué peuplier 5 mm 600×300;-6,00;card"
        in csv
    )
    assert len(csv) == 1 + 5
    only_25 = export_csv(db, date(2026, 11, 25), date(2026, 11, 26), tz=PARIS).splitlines()
    assert len(only_25) == 1 + 2


@pytest.mark.parametrize(
    ("line", "by", "expected"),
    [
        ({"kind": "time", "machine": "laser-1", "item": None}, "machine", "706-laser-1"),
        ({"kind": "material", "machine": "printer-1", "item": None}, "category", "706-member"),
        ({"kind": "item", "machine": None, "item": "mdf-3mm"}, "category", "707-mdf-3mm"),
        ({"kind": "discount", "machine": None, "item": None}, "machine", "709"),
    ],
)
def test_sales_accounts_per_machine_or_category(
    line: dict[str, str | None], by: str, expected: str
) -> None:
    assert account(line, "member", by) == expected


@pytest.fixture
def config(tmp_path: Path, sqlite_engine: Engine) -> Path:
    (tmp_path / "pepper").write_text("p")
    path = tmp_path / "server.toml"
    path.write_text(
        f'database_url = "{sqlite_engine.url}"\npepper_file = "pepper"\n'
        f'[printer]\nkind = "file"\npath = "{tmp_path / "printer.bin"}"\n'
        '[organisation]\nname = "Fablab du Val"\naddress = "1 place de la Mairie"\nsiret = "1"\n'
    )
    return path


def test_ledger_command_verifies_closes_exports_and_reprints(
    db: Session, config: Path, tmp_path: Path
) -> None:
    _november(db)
    runner = CliRunner()
    ok = runner.invoke(main, ["ledger", "verify", "--config", str(config)])
    assert ok.exit_code == 0 and "ledger intact: 4 documents, 0 closures and" in ok.output
    closed = runner.invoke(
        main, ["ledger", "close-day", "--config", str(config), "--date", "2026-11-25"]
    )
    assert closed.exit_code == 0 and "total: 15,00 €" in closed.output, closed.output
    out = tmp_path / "novembre.csv"
    exported = runner.invoke(main, ["ledger", "export", "--config", str(config), "--from", "2026-11-01",
                                    "--to", "2026-11-30", "--by", "category", "--output", str(out)])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert out.read_bytes().startswith(
        b"\xef\xbb\xbf"
    ) and "F-000001;facture;C0007" in out.read_text("utf-8-sig")
    printed = runner.invoke(main, ["ledger", "reprint", "--config", str(config), "R-000002"])
    assert printed.exit_code == 0 and "DUPLICATA n° 1" in printed.output, printed.output
    assert b"DUPLICATA n\xf8 1" in (tmp_path / "printer.bin").read_bytes()
    db.execute(text("UPDATE documents SET customer_ref = 'X' WHERE series = 'F'"))
    db.commit()
    broken = runner.invoke(main, ["ledger", "verify", "--config", str(config)])
    assert broken.exit_code == 1 and "BROKEN F-000001: column customer_ref" in broken.output


def test_a_fiscal_year_closure_takes_the_local_year_and_chains_apart(db: Session) -> None:
    _receipt_at(db, datetime(2026, 12, 31, 22, 30, tzinfo=UTC))  # 23:30 on 31 December in Paris
    _receipt_at(db, datetime(2026, 12, 31, 23, 5, tzinfo=UTC))  # 00:05 on 1 January 2027
    year = close_year(db, 2026, tz=PARIS, actor="alice", now=datetime(2027, 1, 1, 0, 10, tzinfo=UTC))
    assert (year.kind, year.period, year.number) == ("year", "2026", 1)
    assert json.loads(year.content)["documents"] == 1
    assert verify(db) is None


def test_ledger_credit_gives_back_one_plate_and_prints_the_note(db: Session, config: Path, tmp_path: Path) -> None:
    """A repair-café visitor refunded one plate of two, from the command line."""
    close_with_receipt(db, walk_in(db, ("plywood-3mm", "2")), "cash", actor="a", organisation=ORG, now=D1)
    runner = CliRunner()
    bad = runner.invoke(main, ["ledger", "credit", "--config", str(config), "R-000001", "--reason", "x",
                               "--line", "one=1"])  # fmt: skip
    assert bad.exit_code == 2 and "--line 2=1" in bad.output
    too_much = runner.invoke(main, ["ledger", "credit", "--config", str(config), "R-000001", "--reason", "x",
                                    "--line", "1=3"])  # fmt: skip
    assert too_much.exit_code == 1, too_much.output
    done = runner.invoke(main, ["ledger", "credit", "--config", str(config), "R-000001",
                                "--reason", "une plaque rendue", "--line", "1=1", "--actor", "bob"])  # fmt: skip
    assert done.exit_code == 0 and "issued A-000001 on R-000001" in done.output, done.output
    assert "printed A-000001" in done.output
    assert b"A-000001" in (tmp_path / "printer.bin").read_bytes()
    ok = runner.invoke(main, ["ledger", "verify", "--config", str(config)])
    assert ok.exit_code == 0 and "2 documents" in ok.output, ok.output


def test_a_typed_formula_lands_in_the_export_as_text(db: Session) -> None:
    """An item named as a spreadsheet formula is neutralised (OWASP CSV injection)."""
    from billing.models import CatalogueItem

    db.add(CatalogueItem(code="evil", name='=HYPERLINK("http://x";"clic")', price_cents=100))
    db.commit()
    visit_id = walk_in(db, ("evil", "1"))
    close_with_receipt(db, visit_id, "cash", actor="a", organisation=ORG, now=D1)
    text = export_csv(db, date(2026, 11, 1), date(2026, 12, 1), tz=PARIS)
    assert "'=HYPERLINK" in text and ';"=HYPERLINK' not in text and ";=HYPERLINK" not in text
    assert ";1,00;" in text  # the amount stays a number
