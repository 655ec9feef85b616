"""A machine's page for staff: its state now, recent sessions, who is qualified, upkeep, service.

    GET  /machines/laser-1                 the page
    POST /machines/laser-1/out             out of service, with a reason (board, desk)
    POST /machines/laser-1/back            back in service (audited)
    POST /machines/laser-1/service         record a service: the upkeep counters start again
    POST /machines/laser-1/revoke/<grant>  take a qualification back
    POST /machines/laser-1/thresholds      admin: "entretien toutes les 200 h"
    POST /machines/laser-1/qualification   admin: the training this machine needs

The ledger decides; the card on the board follows at once (``billing.live``), and billing
publishes the order to the machine's agent on its next tick.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from billing.downtime import put_back, take_out
from billing.errors import BillingError
from billing.live import LiveState, machine_key
from billing.models import Machine, UsageSession
from billing.qualifications import define, holders, revoke
from billing.upkeep import counters, due, record_service, service_log, set_thresholds
from dashboard.board import machine_card
from dashboard.forms import (
    ActionForm,
    OutOfServiceForm,
    QualificationForm,
    ServiceRecordForm,
    ThresholdsForm,
)
from dashboard.store import ledger, live

bp = Blueprint("machines", __name__, url_prefix="/machines")
RECENT = 20


def _machine(machine_id: str) -> Machine:
    machine = ledger().get(Machine, machine_id)
    if machine is None:
        abort(404)
    return machine


def _page(machine: Machine, status: int = 200, **forms: object) -> ResponseReturnValue:
    db = ledger()
    now = counters(db, machine.id)
    sessions = db.scalars(select(UsageSession).where(UsageSession.machine_id == machine.id)
                          .order_by(UsageSession.started_at.desc()).limit(RECENT)).all()  # fmt: skip
    people = holders(db, machine.qualification_id) if machine.qualification_id else []
    thresholds = ThresholdsForm(prefix="limits", hours=machine.service_every_h, jobs=machine.service_every_jobs,
                                metres=machine.service_every_m)  # fmt: skip
    qualification = QualificationForm(prefix="training", code=machine.qualification.code if machine.qualification
                                      else "", name=machine.qualification.name if machine.qualification else "")  # fmt: skip
    context = {"out_form": OutOfServiceForm(prefix="out"), "service_form": ServiceRecordForm(prefix="service"),
               "limits_form": thresholds, "training_form": qualification} | forms  # fmt: skip
    card = machine_card({"machine": machine.id, **live().hgetall(machine_key(machine.id))}, machine.name)
    return render_template("machines/machine.html", machine=machine, card=card, sessions=sessions, people=people,
                           counters=now, warnings=due(machine, now), log=service_log(db, machine.id),
                           **context), status  # fmt: skip


@bp.route("/<machine_id>")
def machine(machine_id: str) -> ResponseReturnValue:
    return _page(_machine(machine_id))


def _refused(machine: Machine, form: object, err: BillingError, name: str) -> ResponseReturnValue:
    ledger().rollback()
    form.form_errors.append(str(err))  # type: ignore[attr-defined]
    return _page(machine, 400, **{name: form})


def _done(machine: Machine, message: str) -> ResponseReturnValue:
    flash(message, "ok")
    return redirect(url_for("machines.machine", machine_id=machine.id))


def actor() -> str:
    return str(current_user.username)


@bp.route("/<machine_id>/out", methods=["POST"])
def out(machine_id: str) -> ResponseReturnValue:
    machine, form = _machine(machine_id), OutOfServiceForm(prefix="out")
    if not form.validate_on_submit():
        return _page(machine, 400, out_form=form)
    try:
        take_out(ledger(), machine.id, form.reason.data or "", actor=actor())
        ledger().commit()
    except BillingError as err:
        return _refused(machine, form, err, "out_form")
    since = machine.out_of_service_since
    LiveState(live()).service(machine.id, machine.out_of_service_reason, int(since.timestamp()) if since else 0)
    return _done(machine, _("%(machine)s is out of service.", machine=machine.name))


@bp.route("/<machine_id>/back", methods=["POST"])
def back(machine_id: str) -> ResponseReturnValue:
    machine = _machine(machine_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    put_back(ledger(), machine.id, actor=actor())
    ledger().commit()
    LiveState(live()).service(machine.id, None)
    return _done(machine, _("%(machine)s is back in service.", machine=machine.name))


@bp.route("/<machine_id>/service", methods=["POST"])
def service(machine_id: str) -> ResponseReturnValue:
    machine, form = _machine(machine_id), ServiceRecordForm(prefix="service")
    if not form.validate_on_submit():
        return _page(machine, 400, service_form=form)
    try:
        record_service(ledger(), machine.id, form.what.data or "", actor=actor())
        ledger().commit()
    except BillingError as err:
        return _refused(machine, form, err, "service_form")
    LiveState(live()).upkeep(machine.id, due(machine, counters(ledger(), machine.id)))
    return _done(machine, _("Service recorded: the upkeep counters start again."))


@bp.route("/<machine_id>/revoke/<int:grant_id>", methods=["POST"])
def revoke_grant(machine_id: str, grant_id: int) -> ResponseReturnValue:
    """Take a qualification back (it stays in the ledger, revoked, with who and when)."""
    machine = _machine(machine_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        revoke(ledger(), grant_id, actor=actor())
        ledger().commit()
    except BillingError:
        abort(404)
    return _done(machine, _("Qualification taken back."))


def _admin_only() -> None:
    if not current_user.is_admin:
        abort(403)


@bp.route("/<machine_id>/thresholds", methods=["POST"])
def thresholds(machine_id: str) -> ResponseReturnValue:
    _admin_only()
    machine, form = _machine(machine_id), ThresholdsForm(prefix="limits")
    if not form.validate_on_submit():
        return _page(machine, 400, limits_form=form)
    try:
        set_thresholds(ledger(), machine.id, hours=form.hours.data, jobs=form.jobs.data, metres=form.metres.data,
                       actor=actor())  # fmt: skip
        ledger().commit()
    except BillingError as err:
        return _refused(machine, form, err, "limits_form")
    LiveState(live()).upkeep(machine.id, due(machine, counters(ledger(), machine.id)))
    return _done(machine, _("Upkeep thresholds saved."))


@bp.route("/<machine_id>/qualification", methods=["POST"])
def qualification(machine_id: str) -> ResponseReturnValue:
    _admin_only()
    machine, form = _machine(machine_id), QualificationForm(prefix="training")
    if not form.validate_on_submit():
        return _page(machine, 400, training_form=form)
    try:
        define(ledger(), form.code.data or "", form.name.data or "", machines=[machine.id], actor=actor())
        ledger().commit()
    except BillingError as err:
        return _refused(machine, form, err, "training_form")
    return _done(machine, _("Only people trained in %(name)s may now unlock it.", name=form.name.data))
