"""Reports: takings by machine, category and payment method per day or month; utilisation;
material consumed; CSV exports (billing.reports and the pages over it)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from billing.catalogue import add_item
from billing.charges import charge_session
from billing.errors import InvalidOperation
from billing.ledger.documents import Document
from billing.ledger.receipts import close_with_receipt
from billing.models import UsageSession, Visit
from billing.reports import (
    Period,
    Taking,
    export_lines,
    materials_used,
    takings,
    totals_by_key,
    utilisation,
)
from billing.visits import add_discount, open_visit
from tests.dashboard.conftest import PEPPER
from tests.receipts.conftest import ORG

PARIS = timezone(timedelta(hours=1))  # a fixed zone keeps day boundaries deterministic


def closed_visit(db: Session, category: str, method: str, closed: datetime, *, machine: str | None = None,
                 busy_s: int = 0, grams_mm: int = 0, item: str | None = None, discount: str | None = None) -> Visit:  # fmt: skip
    visit = open_visit(db, pepper=PEPPER, category=category, actor="t", with_pin=False).visit
    if machine:
        session = UsageSession(id=str(uuid.uuid4()), agent="pi", machine_id=machine, visit=visit, state="ended",
                               started_at=closed - timedelta(hours=1), session_s=busy_s, busy_s=busy_s,
                               job_s=busy_s, filament_mm_milli=grams_mm * 1000)  # fmt: skip
        db.add(session)
        db.flush()
        charge_session(db, session)
    if item:
        add_item(db, visit.id, item, Decimal(1), actor="t")
    if discount:
        add_discount(db, visit.id, Decimal(discount), "geste", actor="t")
    db.commit()
    close_with_receipt(db, visit.id, method, actor="t", organisation=ORG, now=closed)  # type: ignore[arg-type]
    return visit


@pytest.fixture
def march(db: Session) -> Session:
    """Three visits over two days of March 2026 and one in April."""
    day1 = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    closed_visit(db, "walk-in", "card", day1, machine="laser-1", busy_s=600)  # 10 min × 0,50 = 5,00
    closed_visit(db, "member", "cash", day1 + timedelta(hours=1), item="plywood-3mm", discount="0.50")  # 4,00
    # 23:30 UTC on the 5th is 00:30 on the 6th in the fablab's zone
    closed_visit(db, "walk-in", "cash", datetime(2026, 3, 5, 23, 30, tzinfo=UTC), machine="printer-1",
                 busy_s=3600, grams_mm=3000)  # fmt: skip
    closed_visit(db, "walk-in", "cash", datetime(2026, 4, 2, 10, 0, tzinfo=UTC), item="mdf-3mm")
    open_visit(db, pepper=PEPPER, category="walk-in", actor="t", with_pin=False)  # open: never counted
    db.commit()
    return db


def test_takings_by_machine_per_day_count_closed_visits_in_local_days(march: Session) -> None:
    period = Period.month(2026, 3, PARIS)
    rows = takings(march, period, by="machine", step="day")
    by_day = {(r.bucket, r.key): r.amount for r in rows}
    assert by_day[("2026-03-04", "laser-1")] == Decimal("5.00")
    assert by_day[("2026-03-04", "desk")] == Decimal("4.00")  # 4,50 sheet - 0,50 discount
    assert "2026-03-06" in {r.bucket for r in rows} and "2026-03-05" not in {r.bucket for r in rows}
    assert "2026-04-02" not in {r.bucket for r in rows}


def test_takings_by_category_and_payment_per_month(march: Session) -> None:
    period = Period.days(date(2026, 3, 1), date(2026, 4, 30), PARIS)
    by_method = totals_by_key(takings(march, period, by="payment", step="month"))
    monthly = {(r.bucket, r.key) for r in takings(march, period, by="category", step="month")}
    printer_cents = sum(r.cents for r in takings(march, period) if r.key == "printer-1")
    assert by_method["card"] == 500 and by_method["cash"] == 400 + printer_cents + 300
    assert monthly == {("2026-03", "walk-in"), ("2026-03", "member"), ("2026-04", "walk-in")}
    with pytest.raises(InvalidOperation):
        takings(march, period, by="colour")


def test_utilisation_is_busy_time_over_the_period(march: Session) -> None:
    period = Period.days(date(2026, 3, 4), date(2026, 3, 4), PARIS)
    found = {u.machine: u for u in utilisation(march, period)}
    assert found["laser-1"].busy_s == 600 and found["laser-1"].sessions == 1
    assert found["laser-1"].ratio == pytest.approx(600 / 86400)
    assert found["sewing-1"].ratio == 0.0


def test_materials_used_counts_filament_grams_and_items(march: Session) -> None:
    used = {m.name: m for m in materials_used(march, Period.month(2026, 3, PARIS))}
    assert used["PLA"].unit == "g" and used["PLA"].quantity > 0
    assert used["Contreplaqué peuplier 3 mm 600×300"].quantity == Decimal(1)


def test_export_lines_use_a_pseudonym_and_no_name(march: Session) -> None:
    rows = export_lines(march, Period.month(2026, 3, PARIS))
    assert {r.kind for r in rows} >= {"time", "item", "discount"}
    assert all(r.customer_ref.startswith("V") for r in rows)


def test_an_inverted_period_is_refused() -> None:
    with pytest.raises(InvalidOperation, match="before it starts"):
        Period.days(date(2026, 3, 5), date(2026, 3, 1), PARIS)


def test_the_reports_page_shows_totals_and_a_chart(staff: FlaskClient, march: Session) -> None:
    page = staff.get("/reports/?start=2026-03-01&end=2026-03-31&step=month&by=payment").text
    page = page.replace("\u202f", " ").replace("\xa0", " ")
    assert "Carte" in page and "Espèces" in page and "5,00 €" in page
    assert '<svg class="chart" id="utilisation"' in page and 'class="bar"' in page
    assert "Découpe laser" in page
    assert "0,0 %" in page and "0.0 %" not in page  # shares written the French way


def test_bad_report_parameters_are_a_clear_400_not_ignored(staff: FlaskClient) -> None:
    for query, said in [("start=yesterday", "start : yesterday n'est pas une date"),
                        ("start=2026-02-30", "start : 2026-02-30 n'est pas une date"),
                        ("end=2026-13-45", "end : 2026-13-45 n'est pas une date ; écrivez-la AAAA-MM-JJ"),
                        ("step=week", "step : week n'est pas l'une des valeurs day, month"),
                        ("by=colour", "by : colour n'est pas l'une des valeurs machine, category, payment")]:  # fmt: skip
        for page in ("/reports/", "/reports/takings.csv", "/reports/lines.csv"):
            response = staff.get(f"{page}?{query}")
            assert response.status_code == 400, (page, query)
            assert said in response.text.replace("&#39;", "'"), (page, query)
    assert staff.get("/reports/?start=2026-03-31&end=2026-03-01").status_code == 200  # swapped


def test_csv_exports_for_the_accountant(staff: FlaskClient, march: Session) -> None:
    response = staff.get("/reports/lines.csv?start=2026-03-01&end=2026-03-31")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff")), delimiter=";"))
    assert rows[0] == ["date_cloture", "piece", "visite", "ref_client", "catégorie", "moyen_paiement", "type",
                       "machine", "designation", "quantite", "unite", "prix_unitaire_eur", "montant_eur"]  # fmt: skip
    discount = next(r for r in rows if r[6] == "remise")
    assert discount[-1] == "-0,50" and discount[5] == "Espèces"
    takings_csv = staff.get("/reports/takings.csv?start=2026-03-01&end=2026-03-31&by=machine").text
    assert takings_csv.lstrip("\ufeff").startswith("jour;machine;montant_eur\r\n")
    assert "2026-03-04;laser-1;5,00" in takings_csv
    by_method = staff.get("/reports/takings.csv?start=2026-03-01&end=2026-03-31&by=payment").text
    assert "2026-03-04;Carte;5,00" in by_method


def test_the_lines_csv_names_the_receipt_that_holds_each_line(staff: FlaskClient, db: Session) -> None:
    visit = open_visit(db, pepper=PEPPER, category="walk-in", actor="t", with_pin=False).visit
    add_item(db, visit.id, "plywood-3mm", Decimal(1), actor="t")
    db.commit()
    closed = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    close_with_receipt(db, visit.id, "card", actor="t", organisation=ORG, now=closed)
    visit.closed_at = closed
    db.commit()
    rows = list(csv.reader(io.StringIO(staff.get("/reports/lines.csv?start=2026-03-01&end=2026-03-31")
                                       .text.lstrip("\ufeff")), delimiter=";"))  # fmt: skip
    assert [r[1] for r in rows[1:]] == ["R-000001"]


def test_takings_come_from_documents_not_from_charge_lines(staff: FlaskClient, march: Session) -> None:
    from billing.ledger.receipts import issue_credit_note
    from billing.models import ChargeLine
    from billing.reports import pending

    period = Period.days(date(2026, 3, 1), date(2026, 3, 31), PARIS)
    before = totals_by_key(takings(march, period, by="payment"))
    closed = march.query(Visit).filter(Visit.state == "closed").order_by(Visit.id).first()
    assert closed is not None
    march.add(ChargeLine(visit_id=closed.id, kind="item", description="ajout après clôture", quantity_milli=1000,
                         unit="pce", unit_price_millicents=99900, amount_cents=999))  # fmt: skip
    march.commit()
    assert totals_by_key(takings(march, period, by="payment")) == before  # the receipt did not change
    open_one = open_visit(march, pepper=PEPPER, category="walk-in", actor="t", with_pin=False).visit
    add_item(march, open_one.id, "plywood-3mm", Decimal(2), actor="t")
    march.commit()
    assert totals_by_key(takings(march, period, by="payment")) == before
    charged = sum(line.amount_cents for line in open_one.lines)
    assert charged > 0 and pending(march) == charged  # shown apart, "en cours"
    page = staff.get("/reports/?start=2026-03-01&end=2026-03-31").text.replace("\u202f", " ").replace("\xa0", " ")
    assert "(en cours) : " + f"{charged // 100},{charged % 100:02d} €" in page
    receipt = march.query(Document).filter(Document.visit_id == closed.id).one()
    issue_credit_note(march, receipt.id, "erreur", actor="t", now=datetime(2026, 3, 20, 10, 0, tzinfo=UTC))
    after = takings(march, period, by="payment", step="day")
    assert Taking("2026-03-20", "card", -500) in after  # taken back on the day of the credit note
    assert totals_by_key(after)["card"] == before["card"] - 500


def test_a_split_payment_counts_each_method_for_its_part(march: Session) -> None:
    visit = open_visit(march, pepper=PEPPER, category="walk-in", actor="t", with_pin=False).visit
    add_item(march, visit.id, "plywood-3mm", Decimal(4), actor="t")
    march.commit()
    total = sum(line.amount_cents for line in visit.lines)
    split = {"card": Decimal("1.00"), "cash": Decimal(total - 100) / 100}
    close_with_receipt(march, visit.id, split, actor="t", organisation=ORG,
                       now=datetime(2026, 3, 21, 10, 0, tzinfo=UTC))  # fmt: skip
    rows = takings(march, Period.days(date(2026, 3, 21), date(2026, 3, 21), PARIS), by="payment")
    assert rows == [Taking("2026-03-21", "card", 100), Taking("2026-03-21", "cash", total - 100)]
