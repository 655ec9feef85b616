"""Reports: takings per day or month by machine, category or payment method; utilisation per
machine with a bar chart; material consumed; CSV exports for the accountant.

The figures come from ``billing.reports``; this module only picks the period and renders.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.csvcells import safe_row
from billing.models import Category, Machine
from billing.reports import (
    DESK,
    Period,
    export_lines,
    materials_used,
    takings,
    totals_by_key,
    utilisation,
)
from dashboard.formats import local_zone, now
from dashboard.forms import PeriodForm, payment_choices
from dashboard.store import ledger

bp = Blueprint("reports", __name__, url_prefix="/reports")


def _date(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        return default


def _period(form: PeriodForm) -> Period:
    """The form's period, this month by default; an inverted range is swapped, not refused."""
    today = now().astimezone(local_zone()).date()
    first = _date(form.start.data, today.replace(day=1))
    last = _date(form.end.data, today)
    if last < first:
        first, last = last, first
    return Period.days(first, last, local_zone())


def _form() -> PeriodForm:
    form = PeriodForm(request.args)
    form.validate()  # bad values fall back to defaults below; errors are shown beside the fields
    if form.step.data not in ("day", "month"):
        form.step.data = "day"
    if form.by.data not in ("machine", "category", "payment"):
        form.by.data = "machine"
    return form


def _key_names(db: Session) -> dict[str, str]:
    names = {m.id: m.name for m in db.scalars(select(Machine))}
    names |= {c.code: c.name for c in db.scalars(select(Category))}
    names |= {code: str(label) for code, label in payment_choices()}
    return names | {DESK: _("Desk (items, discounts)")}


@bp.route("/")
def index() -> ResponseReturnValue:
    form = _form()
    period = _period(form)
    db = ledger()
    rows = takings(db, period, by=form.by.data, step=form.step.data)
    buckets = sorted({r.bucket for r in rows})
    keys = list(totals_by_key(rows))
    table = {(r.bucket, r.key): r.cents for r in rows}
    row_totals = {b: sum(r.cents for r in rows if r.bucket == b) for b in buckets}
    return render_template(
        "reports/index.html", form=form, period=period, buckets=buckets, keys=keys, table=table,
        row_totals=row_totals, key_names=_key_names(db),
        totals=totals_by_key(rows), grand_total=sum(r.cents for r in rows),
        utilisation=utilisation(db, period), materials=materials_used(db, period),
        query=request.query_string.decode(),
    )  # fmt: skip


def _csv(name: str, header: list[str], rows: list[list[object]]) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(safe_row(row) for row in rows)  # OWASP: no formula from a typed name
    response = Response("\ufeff" + buffer.getvalue(), mimetype="text/csv")  # BOM: spreadsheets read UTF-8
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _decimal(value: Decimal) -> str:
    """French decimal comma; quantities and unit prices without trailing zeros, amounts with two."""
    text = f"{value:f}" if value.as_tuple().exponent == -2 else f"{value.normalize():f}"
    return text.replace(".", ",")


@bp.route("/takings.csv")
def takings_csv() -> ResponseReturnValue:
    form = _form()
    period = _period(form)
    rows = takings(ledger(), period, by=form.by.data, step=form.step.data)
    return _csv(f"takings-{form.by.data}-{period.start:%Y%m%d}.csv", [form.step.data, form.by.data, "amount_eur"],
                [[r.bucket, r.key, _decimal(r.amount)] for r in rows])  # fmt: skip


@bp.route("/lines.csv")
def lines_csv() -> ResponseReturnValue:
    period = _period(_form())
    header = ["closed_at", "visit", "customer_ref", "category", "payment_method", "kind", "machine",
              "description", "quantity", "unit", "unit_price_eur", "amount_eur"]  # fmt: skip
    rows: list[list[object]] = [
        [f"{r.closed_at.astimezone(period.tz):%Y-%m-%d %H:%M}", r.visit, r.customer_ref, r.category,
         r.payment_method, r.kind, r.machine, r.description, _decimal(r.quantity), r.unit,
         _decimal(r.unit_price), _decimal(r.amount)]  # fmt: skip
        for r in export_lines(ledger(), period)
    ]
    return _csv(f"lines-{period.start:%Y%m%d}.csv", header, rows)
