"""Reports: takings per day or month by machine, category or payment method; utilisation per
machine with a bar chart; material consumed; CSV exports for the accountant.

The figures come from ``billing.reports``; this module only picks the period and renders.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.csvcells import safe_row
from billing.models import Category, Machine
from billing.reports import (
    DESK,
    DIMENSIONS,
    STEPS,
    Period,
    export_lines,
    materials_used,
    pending,
    takings,
    totals_by_key,
    utilisation,
)
from dashboard.formats import local_zone, now
from dashboard.forms import PeriodForm, payment_choices
from dashboard.store import ledger

bp = Blueprint("reports", __name__, url_prefix="/reports")


def _date(text: str | None, default: date, field: str) -> date:
    """The day typed in ``field``, or ``default`` when it is empty; anything else is a 400."""
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(400, description=_("%(field)s: %(value)s is not a date; write it YYYY-MM-DD (e.g. 2026-03-31).",
                                 field=field, value=text[:20]))  # fmt: skip


def _period(form: PeriodForm) -> Period:
    """The form's period, this month by default; an inverted range is swapped, not refused."""
    today = now().astimezone(local_zone()).date()
    first = _date(form.start.data, today.replace(day=1), "start")
    last = _date(form.end.data, today, "end")
    if last < first:
        first, last = last, first
    return Period.days(first, last, local_zone())


def _form() -> PeriodForm:
    form = PeriodForm(request.args)
    form.validate()
    for field, allowed, default in (("step", STEPS, "day"), ("by", DIMENSIONS, "machine")):
        value = request.args.get(field)
        if value and value not in allowed:
            abort(400, description=_("%(field)s: %(value)s is not one of %(allowed)s.",
                                     field=field, value=value[:20], allowed=", ".join(allowed)))  # fmt: skip
        getattr(form, field).data = value or default
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
        totals=totals_by_key(rows), grand_total=sum(r.cents for r in rows), pending=pending(db),
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
    headers = {"day": _("day"), "month": _("month"), "machine": _("machine"), "category": _("category"),
               "payment": _("payment_method")}  # fmt: skip
    methods = dict(payment_choices())
    return _csv(f"takings-{form.by.data}-{period.start:%Y%m%d}.csv",
                [headers[form.step.data], headers[form.by.data], _("amount_eur")],
                [[r.bucket, methods.get(r.key, r.key) if form.by.data == "payment" else r.key, _decimal(r.amount)]
                 for r in rows])  # fmt: skip


def _kinds() -> dict[str, str]:
    return {"time": _("time"), "start_fee": _("start_fee"), "material": _("material"), "item": _("item"),
            "discount": _("discount")}  # fmt: skip


@bp.route("/lines.csv")
def lines_csv() -> ResponseReturnValue:
    period = _period(_form())
    header = [_("closed_at"), _("document"), _("visit"), _("customer_ref"), _("category"), _("payment_method"),
              _("kind"), _("machine"), _("description"), _("quantity"), _("unit"), _("unit_price_eur"),
              _("amount_eur")]  # fmt: skip
    kinds, methods = _kinds(), dict(payment_choices())
    rows: list[list[object]] = [
        [f"{r.closed_at.astimezone(period.tz):%Y-%m-%d %H:%M}", r.document, r.visit, r.customer_ref, r.category,
         " + ".join(methods.get(m, m) for m in r.payment_method.split("+")), kinds.get(r.kind, r.kind),
         r.machine, r.description, _decimal(r.quantity), r.unit, _decimal(r.unit_price), _decimal(r.amount)]  # fmt: skip
        for r in export_lines(ledger(), period)
    ]
    return _csv(f"lines-{period.start:%Y%m%d}.csv", header, rows)
