"""The desk: open visits, check-in, a visit's page (items, discount, attach, close).

Every change goes through a billing function (``billing.visits``, ``billing.catalogue``,
``billing.charges``, the receipts) inside one transaction per request; a refusal from billing
(``InvalidOperation``) is shown on the form, never as a 500.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from billing.catalogue import active_items, add_item
from billing.charges import attach_session, cost_so_far, unassigned_sessions
from billing.credentials import checked_badge_uid, locked_credentials, unlock_credential
from billing.customers import keep_person
from billing.errors import BillingError, InvalidOperation, NotFound
from billing.lines import corrections, reduce_line, remove_line
from billing.lockouts import lift, slowed_terminals
from billing.models import Category, Credential, Machine, Qualification, Visit, utcnow
from billing.money import parse_decimal, to_cents
from billing.payments import payments_for, split
from billing.presentation import quantity_text
from billing.qualifications import grant
from billing.upkeep import counters, due
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
from dashboard.forms import (
    ActionForm,
    AttachForm,
    CheckInForm,
    CloseForm,
    CorrectLineForm,
    CreditNoteForm,
    DiscountForm,
    GrantForm,
    ItemForm,
    KeepPersonForm,
)
from dashboard.store import ledger

bp = Blueprint("desk", __name__, url_prefix="/desk")


def actor() -> str:
    return str(current_user.username)


@bp.route("/")
def index() -> ResponseReturnValue:
    db = ledger()
    machines = db.scalars(select(Machine).where(Machine.active).order_by(Machine.name)).all()
    return render_template("desk/index.html", visits=list_open_visits(db),
                           unassigned=unassigned_sessions(db), slowed=slowed_terminals(db, utcnow()),
                           locked=locked_credentials(db),
                           machines=[(m, due(m, counters(db, m.id))) for m in machines])  # fmt: skip


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
    if not form.is_submitted() and any(code == "walk-in" for code, _name in form.category.choices):
        form.category.data = "walk-in"  # the usual visitor; members are chosen on purpose
    return form


@bp.route("/check-in", methods=["GET", "POST"])
def check_in() -> ResponseReturnValue:
    form = _checkin_form()
    if not form.validate_on_submit():
        return render_template("desk/check_in.html", form=form), 400 if form.is_submitted() else 200
    db = ledger()
    config = current_app.config["FABMETER"]
    try:
        badge = checked_badge_uid(form.badge.data) if (form.badge.data or "").strip() else None
        checked = open_visit(
            db, pepper=config.pepper, category=form.category.data or "", actor=actor(),
            name=form.name.data, badge_uid=badge,
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
    correct = CorrectLineForm(prefix="correct")
    visit = db.get(Visit, visit_id)
    correct.line.choices = [
        (str(line.id), f"{line.description} ({quantity_text(str(line.quantity))} {line.unit})".strip())
        for line in (visit.lines if visit else [])
    ]
    grant_form = GrantForm(prefix="grant")
    grant_form.qualification.choices = [(q.code, q.name) for q in db.scalars(
        select(Qualification).where(Qualification.active).order_by(Qualification.name))]  # fmt: skip
    return {"item_form": item, "discount_form": DiscountForm(prefix="discount"), "grant_form": grant_form,
            "person_form": KeepPersonForm(prefix="person"),
            "attach_form": attach, "close_form": CloseForm(prefix="close"),
            "correct_form": correct, "credit_form": CreditNoteForm(prefix="credit"),
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
    notes = receipts.credit_notes(db, document)
    page = render_template(
        "desk/visit.html", visit=visit, total=visit_total(db, visit_id), closable=ok, why=why,
        costs=costs, locked=locked, document=document, print_job=receipts.last_job(db, document),
        can_print=receipts.printer() is not None, corrections=corrections(db, visit_id),
        credit_notes=[(note, receipts.last_job(db, note)) for note in notes],
        creditable=receipts.creditable_lines(db, document), **context,
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


@bp.route("/visit/<int:visit_id>/qualify", methods=["POST"])
def qualify(visit_id: int) -> ResponseReturnValue:
    """Grant a training: to the visit's customer (kept across visits), or supervised for this visit."""
    form = _forms(visit_id)["grant_form"]
    if not form.validate_on_submit():
        return _visit_page(visit_id, 400, grant_form=form)
    db = ledger()
    visit = get_visit(db, visit_id)
    for_visit = form.supervised.data or visit.customer_id is None
    expires = utcnow() + timedelta(days=form.days.data) if form.days.data else None
    try:
        grant(db, form.qualification.data, actor=actor(), expires_at=expires,
              customer_id=None if for_visit else visit.customer_id, visit_id=visit_id if for_visit else None)  # fmt: skip
        db.commit()
    except BillingError as err:
        return _refused(visit_id, form, err, "grant_form")
    return _done(visit_id, _("Training granted."))


@bp.route("/visit/<int:visit_id>/person", methods=["POST"])
def person(visit_id: int) -> ResponseReturnValue:
    """Keep the visitor as a person found again by their own badge (never a loan badge)."""
    form = KeepPersonForm(prefix="person")
    if not form.validate_on_submit():
        return _visit_page(visit_id, 400, person_form=form)
    try:
        keep_person(ledger(), current_app.config["FABMETER"].pepper, visit_id, form.badge.data or "", actor=actor())
        ledger().commit()
    except BillingError as err:
        return _refused(visit_id, form, err, "person_form")
    return _done(visit_id, _("This person will be found again by their badge."))


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
    """First post: the amount and the payments to confirm; second post (``confirm``): close."""
    form = CloseForm(prefix="close")
    if not form.validate_on_submit():
        return _visit_page(visit_id, 400, close_form=form)
    db = ledger()
    total = visit_total(db, visit_id)
    try:
        payment = split(to_cents(total), form.payment_method.data or "", form.second_method.data or None,
                        form.second_amount.data)  # fmt: skip
        if form.confirm.data != "yes":
            return _confirm_close(visit_id, form, total, payment)
        if form.expected.data != str(to_cents(total)):
            raise InvalidOperation("the total changed since the confirmation: check it and confirm again")
        receipts.close(db, visit_id, payment, actor=actor())
        db.commit()
    except BillingError as err:
        return _refused(visit_id, form, err, "close_form")
    return _done(visit_id, _("Visit closed."))  # the page shows the receipt's number


def _confirm_close(visit_id: int, form: CloseForm, total: Decimal, payment: Any) -> ResponseReturnValue:
    payments = payments_for(to_cents(total), payment)  # refuses what the close would refuse
    form.confirm.data, form.expected.data = "yes", str(to_cents(total))
    return render_template("desk/confirm_close.html", visit=get_visit(ledger(), visit_id), form=form,
                           total=total, payments=payments)  # fmt: skip


@bp.route("/visit/<int:visit_id>/correct", methods=["POST"])
def correct(visit_id: int) -> ResponseReturnValue:
    form = _forms(visit_id)["correct_form"]
    if not form.validate_on_submit():
        return _visit_page(visit_id, 400, correct_form=form)
    db = ledger()
    try:
        line_id = int(form.line.data)
        if form.quantity.data is None:
            remove_line(db, line_id, form.reason.data or "", actor=actor())
        else:
            reduce_line(db, line_id, form.quantity.data, form.reason.data or "", actor=actor())
        db.commit()
    except BillingError as err:
        return _refused(visit_id, form, err, "correct_form")
    return _done(visit_id, _("Line corrected."))


def _credited_quantities(count: int) -> dict[int, Decimal]:
    """The quantities typed per line of the credit-note form ('1', '0,5'), by line position."""
    chosen = {}
    for index in range(count):
        raw = (request.form.get(f"credit-line-{index}") or "").strip()
        if raw:
            try:
                chosen[index] = parse_decimal(raw, places=3)
            except ValueError as err:
                raise InvalidOperation(_("line %(n)s: “%(raw)s” is not a quantity", n=index + 1, raw=raw[:20])) from err
    return chosen


@bp.route("/visit/<int:visit_id>/credit", methods=["POST"])
def credit(visit_id: int) -> ResponseReturnValue:
    form = CreditNoteForm(prefix="credit")
    if not form.validate_on_submit():
        return _visit_page(visit_id, 400, credit_form=form)
    db = ledger()
    try:
        count = len(receipts.creditable_lines(db, receipts.document_of(db, visit_id)))
        lines = None if form.whole.data else _credited_quantities(count)
        if lines == {}:
            raise InvalidOperation(_("Type the quantity to give back on a line, or tick the whole receipt."))
        note = receipts.credit(db, visit_id, form.reason.data or "", lines, form.method.data or "", actor=actor())
    except BillingError as err:
        return _refused(visit_id, form, err, "credit_form")
    return _done(visit_id, _("Credit note %(ref)s issued.", ref=note.reference))


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
