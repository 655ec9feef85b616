"""The desk: open visits, check-in, a visit's page (items, discount, attach, close).

Every change goes through a billing function (``billing.visits``, ``billing.catalogue``,
``billing.charges``, the receipts) inside one transaction per request; a refusal from billing
(``InvalidOperation``) is shown on the form, never as a 500.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from billing.catalogue import active_items, add_item
from billing.charges import attach_session, cost_so_far, unassigned_sessions
from billing.credentials import locked_credentials, unlock_credential
from billing.errors import BillingError, NotFound
from billing.lockouts import lift, slowed_terminals
from billing.models import Category, Credential, Machine, utcnow
from billing.visits import (
    add_discount,
    closable,
    get_visit,
    list_open_visits,
    mark_waiting,
    open_visit,
    visit_total,
)
from dashboard import receipts
from dashboard.formats import local_zone, now
from dashboard.forms import ActionForm, AttachForm, CheckInForm, CloseForm, DiscountForm, ItemForm
from dashboard.store import ledger

bp = Blueprint("desk", __name__, url_prefix="/desk")


def actor() -> str:
    return str(current_user.username)


@bp.route("/")
def index() -> ResponseReturnValue:
    db = ledger()
    return render_template("desk/index.html", visits=list_open_visits(db),
                           unassigned=unassigned_sessions(db), slowed=slowed_terminals(db, utcnow()),
                           locked=locked_credentials(db))  # fmt: skip


@bp.route("/terminal/<terminal>/lift", methods=["POST"])
def lift_terminal(terminal: str) -> ResponseReturnValue:
    """Let a PIN pad slowed down by wrong PINs listen again at once (audited)."""
    if not ActionForm().validate_on_submit() or ledger().get(Machine, terminal) is None:
        abort(400)
    lift(ledger(), terminal, actor=actor())
    ledger().commit()
    flash(_("The PIN pad of %(machine)s listens again.", machine=terminal), "ok")
    return redirect(url_for("desk.index"))


def _checkin_form() -> CheckInForm:
    form = CheckInForm()
    query = select(Category).where(Category.active).order_by(Category.name)
    form.category.choices = [(c.code, c.name) for c in ledger().scalars(query)]
    return form


@bp.route("/check-in", methods=["GET", "POST"])
def check_in() -> ResponseReturnValue:
    form = _checkin_form()
    if not form.validate_on_submit():
        return render_template("desk/check_in.html", form=form), 400 if form.is_submitted() else 200
    db = ledger()
    config = current_app.config["FABMETER"]
    try:
        checked = open_visit(
            db, pepper=config.pepper, category=form.category.data or "", actor=actor(),
            name=form.name.data, badge_uid=(form.badge.data or "").strip() or None,
            with_pin=bool(form.with_pin.data), pin_digits=config.billing.pin_digits, now=now(),
        )  # fmt: skip
        db.commit()
    except BillingError as err:
        db.rollback()
        form.badge.errors.append(str(err)) if form.badge.data else form.form_errors.append(str(err))
        return render_template("desk/check_in.html", form=form), 400
    # The PIN is in this page only: never in a redirect, a flash (cookie) or a log.
    page = render_template("desk/checked_in.html", visit=checked.visit, pin=checked.pin)
    return page, 200, {"Cache-Control": "no-store"}


def _forms(visit_id: int) -> dict[str, Any]:
    db = ledger()
    item = ItemForm(prefix="item")
    item.item.choices = [(i.code, f"{i.name} ({i.unit})") for i in active_items(db)]
    attach = AttachForm(prefix="attach")
    attach.session.choices = [
        (s.id, f"{s.machine_id} — {s.job or s.id[:8]}") for s in unassigned_sessions(db)
    ]
    return {"item_form": item, "discount_form": DiscountForm(prefix="discount"),
            "attach_form": attach, "close_form": CloseForm(prefix="close"),
            "action_form": ActionForm()}  # fmt: skip


def _visit_page(visit_id: int, status: int = 200, **forms: Any) -> ResponseReturnValue:
    db = ledger()
    try:
        visit = get_visit(db, visit_id)
    except NotFound:
        abort(404)
    ok, why = closable(db, visit_id, local_zone())
    costs = {s.id: cost_so_far(db, s) for s in visit.sessions if s.state == "open"}
    locked = [c for c in visit.credentials if c.locked]
    document = receipts.document_of(db, visit_id)
    context = _forms(visit_id) | forms
    page = render_template(
        "desk/visit.html", visit=visit, total=visit_total(db, visit_id), closable=ok, why=why,
        costs=costs, locked=locked, document=document, print_job=receipts.last_job(db, document),
        can_print=receipts.printer() is not None, **context,
    )  # fmt: skip
    return page, status


@bp.route("/visit/<int:visit_id>")
def visit(visit_id: int) -> ResponseReturnValue:
    return _visit_page(visit_id)


def _refused(visit_id: int, form: Any, err: BillingError, name: str) -> ResponseReturnValue:
    ledger().rollback()
    form.form_errors.append(str(err))
    return _visit_page(visit_id, 400, **{name: form})


def _done(visit_id: int, message: str) -> ResponseReturnValue:
    flash(message, "ok")
    return redirect(url_for("desk.visit", visit_id=visit_id))


@bp.route("/visit/<int:visit_id>/item", methods=["POST"])
def item(visit_id: int) -> ResponseReturnValue:
    form = _forms(visit_id)["item_form"]
    if not form.validate_on_submit():
        return _visit_page(visit_id, 400, item_form=form)
    try:
        add_item(ledger(), visit_id, form.item.data, Decimal(form.quantity.data), actor=actor())
        ledger().commit()
    except BillingError as err:
        return _refused(visit_id, form, err, "item_form")
    return _done(visit_id, _("Item added."))


@bp.route("/visit/<int:visit_id>/discount", methods=["POST"])
def discount(visit_id: int) -> ResponseReturnValue:
    form = DiscountForm(prefix="discount")
    if not form.validate_on_submit():
        return _visit_page(visit_id, 400, discount_form=form)
    try:
        add_discount(ledger(), visit_id, Decimal(form.amount.data), form.reason.data or "", actor=actor())
        ledger().commit()
    except BillingError as err:
        return _refused(visit_id, form, err, "discount_form")
    return _done(visit_id, _("Discount applied."))


@bp.route("/visit/<int:visit_id>/attach", methods=["POST"])
def attach(visit_id: int) -> ResponseReturnValue:
    form = _forms(visit_id)["attach_form"]
    if not form.validate_on_submit():
        return _visit_page(visit_id, 400, attach_form=form)
    try:
        attach_session(ledger(), form.session.data, visit_id, actor=actor())
        ledger().commit()
    except BillingError as err:
        return _refused(visit_id, form, err, "attach_form")
    return _done(visit_id, _("Session attached."))


@bp.route("/visit/<int:visit_id>/waiting", methods=["POST"])
def waiting(visit_id: int) -> ResponseReturnValue:
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        mark_waiting(ledger(), visit_id, actor=actor())
        ledger().commit()
    except BillingError as err:
        return _refused(visit_id, form, err, "action_form")
    return _done(visit_id, _("The visit waits for its print."))


@bp.route("/visit/<int:visit_id>/unlock/<int:credential_id>", methods=["POST"])
def unlock(visit_id: int, credential_id: int) -> ResponseReturnValue:
    form = ActionForm()
    credential = ledger().get(Credential, credential_id)
    if not form.validate_on_submit() or credential is None or credential.visit_id != visit_id:
        abort(400)
    unlock_credential(ledger(), credential_id, actor())
    ledger().commit()
    return _done(visit_id, _("Credential unlocked."))


@bp.route("/visit/<int:visit_id>/close", methods=["POST"])
def close(visit_id: int) -> ResponseReturnValue:
    form = CloseForm(prefix="close")
    if not form.validate_on_submit():
        return _visit_page(visit_id, 400, close_form=form)
    try:
        receipts.close(ledger(), visit_id, form.payment_method.data or "", actor=actor())
        ledger().commit()
    except BillingError as err:
        return _refused(visit_id, form, err, "close_form")
    return _done(visit_id, _("Visit closed."))  # the page shows the receipt's number


@bp.route("/visit/<int:visit_id>/reprint", methods=["POST"])
def reprint(visit_id: int) -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        receipts.reprint(ledger(), visit_id, actor=actor())
        ledger().commit()
    except BillingError as err:
        flash(str(err), "error")
        return redirect(url_for("desk.visit", visit_id=visit_id))
    return _done(visit_id, _("Receipt sent to the printer again."))
