"""Admin pages: tariffs versioned, records edited with form errors, staff users."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from billing.models import Category, Machine, Material, StaffUser, TariffVersion
from billing.tariffs import category_by_code, current_version
from tests.dashboard.conftest import login

TARIFF = {"machine": "laser-1", "category": "walk-in", "unit_price": "0.60", "unit_s": "60",
          "minimum_units": "5", "start_fee": "0", "grace_s": "0", "basis": "busy"}  # fmt: skip


def test_editing_a_tariff_adds_a_version_and_keeps_the_old_one(admin: FlaskClient, db: Session) -> None:
    walk_in = category_by_code(db, "walk-in").id
    before = current_version(db, "laser-1", walk_in)
    assert before is not None and before.unit_price_cents == 50
    form = admin.get("/admin/tariffs?machine=laser-1&category=walk-in").text
    assert 'value="0,50"' in form  # the edit starts from the current prices, written in French
    assert admin.post("/admin/tariffs", data=TARIFF).status_code == 302
    db.expire_all()
    after = current_version(db, "laser-1", walk_in)
    assert after is not None and (after.version, after.unit_price_cents) == (before.version + 1, 60)
    assert db.get(TariffVersion, before.id).unit_price_cents == 50  # type: ignore[union-attr]
    assert "v2" in admin.get("/admin/tariffs").text


def test_bad_tariff_input_is_a_form_error(admin: FlaskClient, db: Session) -> None:
    count = db.query(TariffVersion).count()
    for bad in [{"unit_price": "cheap"}, {"unit_price": "-1"}, {"unit_s": "0"}, {"machine": "nope"},
                {"basis": "moon"}, {"grace_s": "1.5"}]:  # fmt: skip
        response = admin.post("/admin/tariffs", data=TARIFF | bad)
        assert response.status_code == 400, bad
        assert 'class="error"' in response.text
    assert db.query(TariffVersion).count() == count


def test_machines_are_added_and_edited(admin: FlaskClient, db: Session) -> None:
    data = {"id": "cnc-1", "name": "Fraiseuse", "kind": "cnc", "agent": "pi-cnc", "material": "", "active": "y"}
    assert admin.post("/admin/machines", data=data).status_code == 302
    assert admin.post("/admin/machines", data=data).status_code == 400  # id taken
    assert admin.post("/admin/machines", data=data | {"id": "CNC 2!"}).status_code == 400
    pla = db.query(Material).filter_by(code="pla").one()
    edit = data | {"name": "Fraiseuse CNC", "material": str(pla.id), "active": ""}
    assert admin.post("/admin/machines/cnc-1", data=edit).status_code == 302
    db.expire_all()
    machine = db.get(Machine, "cnc-1")
    assert machine is not None and (machine.name, machine.material_id, machine.active) == ("Fraiseuse CNC", pla.id, False)
    assert admin.get("/admin/machines/nope").status_code == 404


def test_materials_keep_exact_prices(admin: FlaskClient, db: Session) -> None:
    data = {"code": "abs", "name": "ABS", "diameter_mm": "1.75", "density": "1.04", "price_per_kg": "24.90", "active": "y"}
    assert admin.post("/admin/materials", data=data).status_code == 302
    abs_ = db.query(Material).filter_by(code="abs").one()
    assert (abs_.price_cents_per_kg, abs_.density_mg_cm3, abs_.diameter_um) == (2490, 1040, 1750)
    assert admin.post("/admin/materials", data=data | {"code": "pla"}).status_code == 400
    assert admin.post("/admin/materials", data=data | {"price_per_kg": "lots"}).status_code == 400
    page = admin.get("/admin/materials").text.replace("\u202f", " ").replace("\xa0", " ")
    assert "24,90 €" in page


def test_categories_and_catalogue(admin: FlaskClient, db: Session) -> None:
    assert admin.post("/admin/categories", data={"code": "school", "name": "École", "active": "y"}).status_code == 302
    assert db.query(Category).filter_by(code="school").one().name == "École"
    assert admin.post("/admin/items", data={"code": "acrylic-3mm", "name": "Plexi 3 mm", "unit": "plaque",
                                            "price": "12.40", "active": "y"}).status_code == 302  # fmt: skip
    assert admin.post("/admin/items", data={"code": "x", "name": "", "unit": "", "price": ""}).status_code == 400
    assert "12,40" in admin.get("/admin/items").text


def test_staff_users_are_created_and_can_log_in(admin: FlaskClient, app: object, db: Session) -> None:
    data = {"username": "Claire", "password": "a long enough one", "role": "staff"}
    assert admin.post("/admin/users", data=data).status_code == 302
    user = db.query(StaffUser).filter_by(username="claire").one()
    assert user.password_hash.startswith("$argon2id$") and "a long enough one" not in user.password_hash
    assert admin.post("/admin/users", data=data).status_code == 400  # taken
    assert admin.post("/admin/users", data=data | {"username": "dan", "password": "short"}).status_code == 400
    other = app.test_client()  # type: ignore[attr-defined]
    assert login(other, "claire", "a long enough one").status_code == 302


def test_an_admin_cannot_lock_themself_out(admin: FlaskClient, db: Session) -> None:
    alice = db.query(StaffUser).filter_by(username="alice").one()
    response = admin.post(f"/admin/users/{alice.id}", data={"role": "staff", "active": "y"})
    assert response.status_code == 400
    db.expire_all()
    assert db.get(StaffUser, alice.id).role == "admin"  # type: ignore[union-attr]


def test_an_admin_changes_a_role_and_a_password(admin: FlaskClient, app: object, db: Session) -> None:
    bob = db.query(StaffUser).filter_by(username="bob").one()
    data = {"role": "admin", "active": "y", "password": "brand new password"}
    assert admin.post(f"/admin/users/{bob.id}", data=data).status_code == 302
    other = app.test_client()  # type: ignore[attr-defined]
    assert login(other, "bob", "brand new password").status_code == 302
    assert other.get("/admin/").status_code == 200


def test_organisation_settings_are_shown_read_only(admin: FlaskClient) -> None:
    page = admin.get("/admin/").text
    assert "Fablab du Val" in page and "123 456 789 00012" in page
    assert "TVA non applicable, art. 293 B du CGI" in page and "server.toml" in page
    assert "<form" not in page.split('id="organisation"')[1].split("</dl>")[0]


def test_tariff_counts_are_text_inputs_read_the_french_way(admin: FlaskClient, db: Session) -> None:
    """A number input lets a browser without French locale data turn '1 200' or '1,5' into
    something else; counts are text inputs like amounts, parsed and range-checked on the server."""
    form = admin.get("/admin/tariffs?machine=laser-1&category=walk-in").text
    for name in ("unit_s", "minimum_units", "grace_s"):
        tag = form[form.index(f'name="{name}"') - 200 : form.index(f'name="{name}"') + 200]
        assert 'type="text"' in tag and 'inputmode="decimal"' in tag, name
    assert admin.post("/admin/tariffs", data=TARIFF | {"unit_s": "1 200", "grace_s": " 90 "}).status_code == 302
    version = current_version(db, "laser-1", category_by_code(db, "walk-in").id)
    assert version is not None and (version.unit_s, version.grace_s) == (1200, 90)
    assert 'value="1 200"' in admin.get("/admin/tariffs?machine=laser-1&category=walk-in").text.replace("\u202f", " ")
    half = admin.post("/admin/tariffs", data=TARIFF | {"minimum_units": "1,5"})
    assert half.status_code == 400 and "« 1,5 » n&#39;est pas un nombre entier" in half.text
    huge = admin.post("/admin/tariffs", data=TARIFF | {"unit_s": "86 401"})
    assert huge.status_code == 400 and "entre 1 et 86" in huge.text
