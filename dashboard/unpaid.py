"""Invoices left to pay (staff): the list, overdue first, and recording a payment when it comes.

Through ``billing.ledger.unpaid`` (checked, audited); post/redirect/get, so reloading the page
records nothing twice.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from billing.errors import BillingError
from billing.ledger.documents import Document
from billing.ledger.unpaid import record_payment, unpaid_invoices
from dashboard.formats import local_zone, now
from dashboard.forms import InvoicePaymentForm
from dashboard.store import ledger

bp = Blueprint("unpaid", __name__, url_prefix="/desk/unpaid")


def today() -> date:
    """The organisation's today, from the app's clock."""
    return now().astimezone(local_zone()).date()


@bp.route("/")
def index() -> ResponseReturnValue:
    return _page(InvoicePaymentForm(formdata=None), None, 200)


def _page(form: InvoicePaymentForm, failed: int | None, status: int) -> ResponseReturnValue:
    """The list; the row ``failed`` keeps what was typed and its errors, the others start blank."""
    blank = InvoicePaymentForm(formdata=None, paid_on=today().isoformat())
    rows = unpaid_invoices(ledger(), today=today())
    return render_template("desk/unpaid.html", rows=rows, today=today(), form=form, blank=blank,
                           failed=failed), status  # fmt: skip


@bp.route("/<int:document_id>/pay", methods=["POST"])
def pay(document_id: int) -> ResponseReturnValue:
    form = InvoicePaymentForm()
    db = ledger()
    document = db.get(Document, document_id)
    if document is None:
        abort(404)
    if not form.validate_on_submit():
        return _page(form, document_id, 400)
    try:
        record_payment(db, document_id, form.method.data or "", date.fromisoformat(form.paid_on.data),
                       actor=str(current_user.username), today=today(), tz=local_zone())  # fmt: skip
        db.commit()
    except ValueError as err:  # BillingError's InvalidOperation, or a date like 2026-02-30
        db.rollback()
        form.form_errors.append(str(err) if isinstance(err, BillingError) else _("A date like 2026-12-05."))
        return _page(form, document_id, 400)
    flash(_("Payment of %(ref)s recorded.", ref=document.reference), "ok")
    return redirect(url_for("unpaid.index"))
