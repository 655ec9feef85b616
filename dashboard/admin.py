"""Administration (admin role only): machines, materials, categories, catalogue, tariffs, staff.

Tariff edits go through ``billing.tariffs.set_tariff`` (an edit is a new version); the other
tables are plain records, each change written to the audit log. Organisation settings live in
``server.toml`` and are shown read-only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import BillingError
from billing.models import (
    AuditEntry,
    CatalogueItem,
    Category,
    Machine,
    Material,
    Qualification,
    StaffUser,
    Tariff,
    WallLink,
)
from billing.money import to_cents
from billing.tariffs import category_by_code, current_version, set_tariff
from dashboard import labels, staff, wall
from dashboard.auth import require_admin
from dashboard.forms import (
    ActionForm,
    CategoryForm,
    ItemAdminForm,
    MachineForm,
    MaterialForm,
    TariffForm,
    UserEditForm,
    UserForm,
    WallLinkForm,
)
from dashboard.store import ledger

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_admin)


def actor() -> str:
    return str(current_user.username)


def _saved(endpoint: str, what: str) -> ResponseReturnValue:
    ledger().commit()
    flash(_("Saved: %(what)s", what=what), "ok")
    return redirect(url_for(endpoint))


def _get(model: Any, key: Any) -> Any:
    found = ledger().get(model, key)
    if found is None:
        abort(404)
    return found


def _code_taken(db: Session, model: Any, code: str, current: Any) -> bool:
    other = db.scalars(select(model).where(model.code == code)).first()
    return other is not None and other is not current


@bp.route("/")
def index() -> ResponseReturnValue:
    organisation = current_app.config["FABMETER"].organisation
    config_path = current_app.config["FABMETER"].path
    audit_log = ledger().scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(50))
    return render_template("admin/index.html", organisation=organisation, config_path=config_path,
                           audit_log=list(audit_log))  # fmt: skip


# ------------------------------------------------------------------ machines


def _material_choices() -> list[tuple[str, str]]:
    materials = ledger().scalars(select(Material).where(Material.active).order_by(Material.name))
    return [("", "—")] + [(str(m.id), m.name) for m in materials]


@bp.route("/machines", methods=["GET", "POST"])
@bp.route("/machines/<machine_id>", methods=["GET", "POST"])
def machines(machine_id: str | None = None) -> ResponseReturnValue:
    db = ledger()
    machine = _get(Machine, machine_id) if machine_id else None
    form = MachineForm(obj=machine, material=str(machine.material_id or "") if machine else "")
    form.material.choices = _material_choices()
    if form.validate_on_submit():
        if machine is None and db.get(Machine, form.id.data) is not None:
            form.id.errors.append(_("This id is taken."))
        else:
            target = machine or Machine(id=form.id.data)
            target.name, target.kind = form.name.data, form.kind.data
            target.agent = form.agent.data or None
            target.material_id = int(form.material.data) if form.material.data else None
            target.active = bool(form.active.data)
            db.add(target)
            audit(db, actor(), "save_machine", f"machine {target.id}")
            return _saved("admin.machines", target.name)
    rows = db.scalars(select(Machine).order_by(Machine.id))
    status = 400 if form.is_submitted() else 200
    return render_template("admin/machines.html", form=form, rows=list(rows), editing=machine), status


# ------------------------------------------------------------------ materials, categories, items


@bp.route("/materials", methods=["GET", "POST"])
@bp.route("/materials/<int:row_id>", methods=["GET", "POST"])
def materials(row_id: int | None = None) -> ResponseReturnValue:
    db = ledger()
    row = _get(Material, row_id) if row_id else None
    form = MaterialForm(obj=row)
    if row is not None and not form.is_submitted():
        form.diameter_mm.data, form.density.data = row.diameter_mm, row.density_g_cm3
        form.price_per_kg.data = Decimal(row.price_cents_per_kg) / 100
    if form.validate_on_submit():
        if _code_taken(db, Material, form.code.data, row):
            form.code.errors.append(_("This code is taken."))
        else:
            target = row or Material()
            target.code, target.name, target.active = form.code.data, form.name.data, bool(form.active.data)
            target.diameter_um = int(Decimal(form.diameter_mm.data) * 1000)
            target.density_mg_cm3 = int(Decimal(form.density.data) * 1000)
            target.price_cents_per_kg = to_cents(Decimal(form.price_per_kg.data))
            db.add(target)
            audit(db, actor(), "save_material", f"material {target.code}",
                  f"{target.price_cents_per_kg} cents/kg")  # fmt: skip
            return _saved("admin.materials", target.name)
    rows = db.scalars(select(Material).order_by(Material.name))
    status = 400 if form.is_submitted() else 200
    return render_template("admin/materials.html", form=form, rows=list(rows), editing=row), status


@bp.route("/categories", methods=["GET", "POST"])
@bp.route("/categories/<int:row_id>", methods=["GET", "POST"])
def categories(row_id: int | None = None) -> ResponseReturnValue:
    db = ledger()
    row = _get(Category, row_id) if row_id else None
    form = CategoryForm(obj=row)
    if form.validate_on_submit():
        if _code_taken(db, Category, form.code.data, row):
            form.code.errors.append(_("This code is taken."))
        else:
            target = row or Category()
            target.code, target.name, target.active = form.code.data, form.name.data, bool(form.active.data)
            db.add(target)
            audit(db, actor(), "save_category", f"category {target.code}")
            return _saved("admin.categories", target.name)
    rows = db.scalars(select(Category).order_by(Category.name))
    status = 400 if form.is_submitted() else 200
    return render_template("admin/categories.html", form=form, rows=list(rows), editing=row), status


@bp.route("/items", methods=["GET", "POST"])
@bp.route("/items/<int:row_id>", methods=["GET", "POST"])
def items(row_id: int | None = None) -> ResponseReturnValue:
    db = ledger()
    row = _get(CatalogueItem, row_id) if row_id else None
    form = ItemAdminForm(obj=row)
    trainings = {str(q.id): q for q in db.scalars(select(Qualification).where(Qualification.active))}
    form.grants.choices = [("", "—")] + [(key, q.name) for key, q in trainings.items()]
    if row is not None and not form.is_submitted():
        form.price.data = row.price
        form.grants.data = str(row.grants_qualification_id or "")
        form.validity_days.data = row.grants_validity_days
    if form.validate_on_submit():
        if _code_taken(db, CatalogueItem, form.code.data, row):
            form.code.errors.append(_("This code is taken."))
        else:
            target = row or CatalogueItem()
            target.code, target.name, target.unit = form.code.data, form.name.data, form.unit.data
            target.price_cents, target.active = to_cents(Decimal(form.price.data)), bool(form.active.data)
            granted = trainings.get(form.grants.data or "")
            target.grants_qualification_id = granted.id if granted else None
            target.grants_validity_days = form.validity_days.data if granted else None
            db.add(target)
            audit(db, actor(), "save_item", f"item {target.code}", f"{target.price_cents} cents")
            return _saved("admin.items", target.name)
    rows = db.scalars(select(CatalogueItem).order_by(CatalogueItem.name))
    status = 400 if form.is_submitted() else 200
    return render_template("admin/items.html", form=form, rows=list(rows), editing=row), status


# ------------------------------------------------------------------ tariffs


def _tariff_form() -> TariffForm:
    db = ledger()
    form = TariffForm(machine=request.args.get("machine"), category=request.args.get("category"))
    form.machine.choices = [(m.id, m.name) for m in db.scalars(select(Machine).order_by(Machine.id))]
    form.category.choices = [(c.code, c.name) for c in db.scalars(select(Category).order_by(Category.name))]
    if not form.is_submitted() and form.machine.data and form.category.data:
        _prefill(db, form)
    return form


def _prefill(db: Session, form: TariffForm) -> None:
    """Start an edit from the current version's values."""
    try:
        category = category_by_code(db, form.category.data or "")
    except BillingError:
        return
    version = current_version(db, form.machine.data or "", category.id)
    if version is None:
        return
    form.unit_price.data = Decimal(version.unit_price_cents) / 100
    form.unit_s.data, form.minimum_units.data = version.unit_s, version.minimum_units
    form.start_fee.data = Decimal(version.start_fee_cents) / 100
    form.grace_s.data, form.basis.data = version.grace_s, version.basis
    form.material_applies.data = version.material_applies


@bp.route("/tariffs", methods=["GET", "POST"])
def tariffs() -> ResponseReturnValue:
    db = ledger()
    form = _tariff_form()
    if form.validate_on_submit():
        try:
            version = set_tariff(
                db, form.machine.data or "", form.category.data or "",
                unit_price_cents=to_cents(Decimal(form.unit_price.data)), unit_s=form.unit_s.data,
                minimum_units=form.minimum_units.data, start_fee_cents=to_cents(Decimal(form.start_fee.data)),
                grace_s=form.grace_s.data, basis=form.basis.data, material_applies=bool(form.material_applies.data),
                actor=actor(),
            )  # fmt: skip
            named = f"{version.tariff.machine.name} / {version.tariff.category.name}"
            return _saved("admin.tariffs", f"{named} v{version.version}")
        except BillingError as err:
            db.rollback()
            form.form_errors.append(labels.error(err))
    rows = db.scalars(select(Tariff).order_by(Tariff.machine_id, Tariff.category_id))
    status = 400 if form.is_submitted() else 200
    return render_template("admin/tariffs.html", form=form, rows=list(rows)), status


# ------------------------------------------------------------------ staff users


@bp.route("/users", methods=["GET", "POST"])
def users() -> ResponseReturnValue:
    db = ledger()
    form = UserForm()
    if form.validate_on_submit():
        try:
            user = staff.create_user(db, form.username.data or "", form.password.data or "",
                                     role=form.role.data or "staff", actor=actor())  # fmt: skip
            return _saved("admin.users", user.username)
        except BillingError as err:
            db.rollback()
            form.username.errors.append(labels.error(err))
    rows = db.scalars(select(StaffUser).order_by(StaffUser.username))
    status = 400 if form.is_submitted() else 200
    return render_template("admin/users.html", form=form, rows=list(rows)), status


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user(user_id: int) -> ResponseReturnValue:
    db = ledger()
    row: StaffUser = _get(StaffUser, user_id)
    form = UserEditForm(obj=row)
    if form.validate_on_submit():
        if row.id == int(current_user.id) and (form.role.data != "admin" or not form.active.data):
            form.role.errors.append(_("You cannot remove your own admin role or disable yourself."))
        else:
            row.role, row.active = form.role.data or "staff", bool(form.active.data)
            if form.password.data:
                staff.set_password(db, row, form.password.data, actor=actor())
            audit(db, actor(), "save_user", f"user {row.username}", f"role {row.role} active {row.active}")
            return _saved("admin.users", row.username)
    status = 400 if form.is_submitted() else 200
    return render_template("admin/user.html", form=form, row=row), status


# ------------------------------------------------------------------ wall-screen links


@bp.route("/wall-links", methods=["GET", "POST"])
def wall_links() -> ResponseReturnValue:
    """Make a read-only link to the board (its address is shown once) and list the others."""
    db = ledger()
    form = WallLinkForm()
    made = None
    if form.validate_on_submit():
        link, token = wall.make_link(db, form.label.data or "", actor=actor())
        db.commit()
        made = (link, url_for("wall.board", token=token, _external=True))
    rows = db.scalars(select(WallLink).order_by(WallLink.created_at.desc(), WallLink.id.desc()))
    status = 400 if form.is_submitted() and made is None else 200
    page = render_template("admin/wall_links.html", form=form, rows=list(rows), made=made)
    return page, status, {"Cache-Control": "no-store"}  # the new address is in this page only


@bp.route("/wall-links/<int:link_id>/revoke", methods=["POST"])
def revoke_wall_link(link_id: int) -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        abort(400)
    link = _get(WallLink, link_id)
    wall.revoke(ledger(), link.id, actor=actor())
    ledger().commit()
    flash(_("The wall-screen link “%(label)s” no longer works.", label=link.label), "ok")
    return redirect(url_for("admin.wall_links"))
