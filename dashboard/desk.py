"""The desk: open visits, check-in, a visit's page (items, discount, attach, close).

Every change goes through a billing function (``billing.visits``, ``billing.catalogue``,
``billing.charges``, the receipts) inside one transaction per request; a refusal from billing
(``InvalidOperation``) is shown on the form, never as a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.catalogue import active_items, add_item
from billing.charges import Running, attach_session, cost_so_far, unassigned_sessions
from billing.credentials import checked_badge_uid, locked_credentials, unlock_credential
from billing.customers import (
    checked_details,
    display_name,
    keep_person,
    save_customer,
    search_customers,
)
from billing.errors import BillingError, InvalidOperation, NotFound
from billing.filament import mark_dealt, pending_corrections
from billing.ledger.receipts import INVOICE, series_for
from billing.ledger.unpaid import left_to_pay, payment_of
from billing.lines import corrections, reduce_line, remove_line
from billing.live import machine_key
from billing.lockouts import lift, slowed_terminals
from billing.models import (
    Category,
    Credential,
    Customer,
    Machine,
    Qualification,
    UsageSession,
    Visit,
    utcnow,
)
from billing.money import parse_decimal, to_cents
from billing.payments import DUE, payments_for, split
from billing.presentation import quantity_text
from billing.qualifications import grant
from billing.upkeep import counters, due
from billing.visits import (
    COMPANY,
    add_discount,
    closable,
    get_visit,
    list_open_visits,
    mark_waiting,
    open_visit,
    set_customer,
    visit_total,
    waiting_for,
)
from dashboard import labels, pin_display, receipts
from dashboard.board import machine_card
from dashboard.customers import checked
from dashboard.formats import local_zone, now
from dashboard.forms import (
    ActionForm,
    AttachForm,
    CheckInForm,
    CloseForm,
    CorrectLineForm,
    CreditNoteForm,
    CustomerForm,
    DiscountForm,
    GrantForm,
    ItemForm,
    KeepPersonForm,
    VisitCustomerForm,
)
from dashboard.store import ledger, live

bp = Blueprint("desk", __name__, url_prefix="/desk")
NEW = "new"  # the check-in's customer choice that creates one from the fields below


def actor() -> str:
    return str(current_user.username)


@dataclass(frozen=True)
class Unclaimed:
    """One row of the attach list: a session no visit pays for yet."""

    id: str
    machine: str
    job: str | None
    started_at: datetime
    duration_s: int
    running: bool
    after_close_of: int | None


def unclaimed(db: Session) -> list[Unclaimed]:
    """The attach list, newest first; a running session's duration counts up to now."""
    moment = now()
    return [
        Unclaimed(s.id, s.machine.name, s.job, s.started_at,
                  max(s.session_s, int((moment - s.started_at).total_seconds())) if s.state == "open" else s.session_s,
                  s.state == "open", s.after_close_of)  # fmt: skip
        for s in unassigned_sessions(db)
    ]


@bp.route("/")
def index() -> ResponseReturnValue:
    db = ledger()
    machines = db.scalars(select(Machine).where(Machine.active).order_by(Machine.name)).all()
    return render_template("desk/index.html", visits=list_open_visits(db),
                           unassigned=unclaimed(db), slowed=slowed_terminals(db, utcnow()),
                           locked=locked_credentials(db), late=pending_corrections(db),
                           machines=[(m, due(m, counters(db, m.id))) for m in machines])  # fmt: skip


@bp.route("/filament/<int:correction_id>/dealt", methods=["POST"])
def filament_dealt(correction_id: int) -> ResponseReturnValue:
    """Staff handled filament that came after its visit closed (billed anew, or let go): audited."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        mark_dealt(ledger(), correction_id, actor=actor())
    except NotFound:
        abort(404)
    except InvalidOperation as err:
        ledger().rollback()
        flash(str(err), "error")
        return redirect(url_for("desk.index"))
    ledger().commit()
    flash(_("Marked as dealt with."), "ok")
    return redirect(url_for("desk.index"))


@bp.route("/attach/<session_id>")
def attach_to(session_id: str) -> ResponseReturnValue:
    """From the board: which open visit pays for this unclaimed session (one button per visit)."""
    db = ledger()
    found = [u for u in unclaimed(db) if u.id == session_id]
    if not found:
        abort(404)
    return render_template("desk/attach.html", session=found[0], visits=list_open_visits(db),
                           form=AttachForm(prefix="attach"))  # fmt: skip


@bp.route("/terminal/<terminal>/lift", methods=["POST"])
def lift_terminal(terminal: str) -> ResponseReturnValue:
    """Let a PIN pad slowed down by wrong PINs listen again at once (audited)."""
    if not ActionForm().validate_on_submit() or ledger().get(Machine, terminal) is None:
        abort(400)
    lift(ledger(), terminal, actor=actor())
    ledger().commit()
    flash(_("The PIN pad of %(machine)s listens again.", machine=labels.machine_name(terminal)), "ok")
    return redirect(url_for("desk.index"))


def _checkin_form() -> CheckInForm:
    form = CheckInForm()
    db = ledger()
    query = select(Category).where(Category.active).order_by(Category.name)
    form.category.choices = [(c.code, c.name) for c in db.scalars(query)]
    found = search_customers(db, request.args.get("q", ""), limit=200)
    chosen = db.get(Customer, request.args.get("customer", type=int) or 0)
    chosen = chosen if chosen is not None and chosen.erased_at is None else None
    if chosen is not None and chosen not in found:
        found.insert(0, chosen)
    form.customer.choices = [("", _("— no customer record —")), (NEW, _("— a new customer (below) —"))] + [
        (str(c.id), f"{display_name(c)} · {c.ref}") for c in found
    ]  # fmt: skip
    if not form.is_submitted():
        company = chosen is not None and chosen.kind == "company"
        form.customer.data = str(chosen.id) if chosen is not None else ""
        codes = [code for code, _name in form.category.choices]
        # the usual visitor is a walk-in; members are chosen on purpose
        form.category.data = "company" if company and "company" in codes else ("walk-in" if "walk-in" in codes else None)
    return form


def _checkin_page(form: CheckInForm, new: CustomerForm, status: int) -> ResponseReturnValue:
    return render_template("desk/check_in.html", form=form, new=new, query=request.args.get("q", "")), status


def _checkin_customer(form: CheckInForm, new: CustomerForm) -> tuple[bool, int | None]:
    """Whether the customer part is right, and the customer's id (created now for ``new``)."""
    db = ledger()
    if form.customer.data == NEW:
        if not new.validate() or checked(new) is None:
            form.customer.errors.append(_("Complete the new customer below."))
            return False, None
        return True, save_customer(db, checked_details(new.details()), actor=actor()).id
    customer = db.get(Customer, int(form.customer.data)) if (form.customer.data or "").isdigit() else None
    if form.category.data == COMPANY and (customer is None or customer.kind != "company"):
        form.customer.errors.append(_("A company's visit needs a company customer: choose it, or create it below."))
        return False, None
    return True, customer.id if customer is not None else None


@bp.route("/check-in", methods=["GET", "POST"])
def check_in() -> ResponseReturnValue:
    form, new = _checkin_form(), CustomerForm(prefix="new")
    if not form.validate_on_submit():
        return _checkin_page(form, new, 400 if form.is_submitted() else 200)
    db = ledger()
    config = current_app.config["FABMETER"]
    try:
        ok, customer_id = _checkin_customer(form, new)
        if not ok:
            db.rollback()
            return _checkin_page(form, new, 400)
        badge = checked_badge_uid(form.badge.data) if (form.badge.data or "").strip() else None
        result = open_visit(
            db, pepper=config.pepper, category=form.category.data or "", actor=actor(),
            name=form.name.data, customer_id=customer_id, badge_uid=badge,
            with_pin=bool(form.with_pin.data), pin_digits=config.billing.pin_digits, now=now(),
        )  # fmt: skip
        db.commit()
    except BillingError as err:
        db.rollback()  # a customer created in this form goes too: nothing half-done
        form.badge.errors.append(labels.error(err)) if form.badge.data else form.form_errors.append(labels.error(err))
        return _checkin_page(form, new, 400)
    if result.pin:
        pin_display.keep(result.visit.id)
    # post/redirect/get: reloading the result page never checks the visitor in a second time
    return redirect(url_for("desk.checked_in", visit_id=result.visit.id), 303)


@bp.route("/checked-in/<int:visit_id>")
def checked_in(visit_id: int) -> ResponseReturnValue:
    """The check-in's result; its PIN only on the first view within a minute (``pin_display``)."""
    try:
        visit = get_visit(ledger(), visit_id)
    except NotFound:
        abort(404)
    pin = pin_display.take(visit)
    page = render_template("desk/checked_in.html", visit=visit, pin=pin)
    return page, 200, {"Cache-Control": "no-store"}


def _forms(visit_id: int) -> dict[str, Any]:
    db = ledger()
    item = ItemForm(prefix="item")
    item.item.choices = [(i.code, f"{i.name} ({i.unit})") for i in active_items(db)]
    attach = AttachForm(prefix="attach")
    attach.session.choices = [(s.id, s.id) for s in unassigned_sessions(db)]  # one button per row (visit.html)
    correct = CorrectLineForm(prefix="correct")
    visit = db.get(Visit, visit_id)
    correct.line.choices = [
        (str(line.id), f"{line.description} ({quantity_text(str(line.quantity))} {line.unit})".strip())
        for line in (visit.lines if visit else [])
    ]
    close = CloseForm(prefix="close")
    if visit is not None and series_for(visit) != INVOICE:  # a receipt is paid now
        close.payment_method.choices = [c for c in close.payment_method.choices if c[0] != DUE]
    grant_form = GrantForm(prefix="grant")
    grant_form.qualification.choices = [(q.code, q.name) for q in db.scalars(
        select(Qualification).where(Qualification.active).order_by(Qualification.name))]  # fmt: skip
    return {"item_form": item, "discount_form": DiscountForm(prefix="discount"), "grant_form": grant_form,
            "person_form": KeepPersonForm(prefix="person"),
            "attach_form": attach, "unclaimed": unclaimed(db), "close_form": close, "customer_form": _customer_form(visit),
            "correct_form": correct, "credit_form": CreditNoteForm(prefix="credit"),
            "action_form": ActionForm()}  # fmt: skip


def _customer_form(visit: Visit | None) -> VisitCustomerForm:
    form = VisitCustomerForm(prefix="customer")
    found = search_customers(ledger(), limit=500)
    if visit is not None and visit.customer is not None and visit.customer not in found:
        found.insert(0, visit.customer)
    form.customer.choices = [("", _("— no customer record —"))] + [
        (str(c.id), f"{display_name(c)} · {c.ref}") for c in found
    ]  # fmt: skip
    if not form.is_submitted() and visit is not None:
        form.customer.data = str(visit.customer_id or "")
    return form


@bp.route("/visit/<int:visit_id>/customer", methods=["POST"])
def customer(visit_id: int) -> ResponseReturnValue:
    form = _customer_form(ledger().get(Visit, visit_id))
    if not form.validate_on_submit():
        return _visit_page(visit_id, 400, customer_form=form)
    try:
        chosen = int(form.customer.data) if form.customer.data else None
        set_customer(ledger(), visit_id, chosen, actor=actor())
        ledger().commit()
    except BillingError as err:
        return _refused(visit_id, form, err, "customer_form")
    return _done(visit_id, _("Customer changed."))


def running(session: UsageSession) -> Running:
    """What the board knows of an open session now, so the desk's cost so far is the board's."""
    fields = live().hgetall(machine_key(session.machine_id)) or {}
    elapsed = int((now() - session.started_at).total_seconds())
    if fields.get("session") != session.id:
        return Running(elapsed_s=elapsed)
    card = machine_card(fields)
    return Running(elapsed_s=card.elapsed_s or elapsed, working=card.state in ("busy", "printing"))


def _visit_page(visit_id: int, status: int = 200, **forms: Any) -> ResponseReturnValue:
    db = ledger()
    try:
        visit = get_visit(db, visit_id)
    except NotFound:
        abort(404)
    ok, _why = closable(db, visit_id, local_zone())
    costs = {s.id: cost_so_far(db, s, running(s)) for s in visit.sessions if s.state == "open"}
    locked = [c for c in visit.credentials if c.locked]
    document = receipts.document_of(db, visit_id)
    context = _forms(visit_id) | forms
    notes = receipts.credit_notes(db, document)
    settled = {"left_cents": left_to_pay(db, document), "payment": payment_of(db, document.id)} if document else {}
    page = render_template(
        "desk/visit.html", visit=visit, total=visit_total(db, visit_id), closable=ok, waiting=waiting_for(db, visit_id),
        costs=costs, locked=locked, document=document, print_job=receipts.last_job(db, document),
        can_print=receipts.printer() is not None, corrections=corrections(db, visit_id),
        credit_notes=[(note, receipts.last_job(db, note)) for note in notes],
        creditable=receipts.creditable_lines(db, document), settled=settled, **context,
    )  # fmt: skip
    return page, status


@bp.route("/visit/<int:visit_id>")
def visit(visit_id: int) -> ResponseReturnValue:
    return _visit_page(visit_id)


def _refused(visit_id: int, form: Any, err: BillingError, name: str) -> ResponseReturnValue:
    ledger().rollback()
    form.form_errors.append(labels.error(err))
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
        running = waiting_for(db, visit_id)
        if running:
            raise InvalidOperation("this visit cannot be closed yet: %(why)s",
                                   why="; ".join(labels.waiting(w) for w in running))  # fmt: skip
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
                raise InvalidOperation("line %(n)s: “%(raw)s” is not a quantity", n=index + 1, raw=raw[:20]) from err
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
            raise InvalidOperation("Type the quantity to give back on a line, or tick the whole receipt.")
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
        flash(labels.error(err), "error")
        return redirect(url_for("desk.visit", visit_id=visit_id))
    return _done(visit_id, _("Receipt sent to the printer again."))
