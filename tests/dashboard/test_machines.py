"""A machine's page: out of service and back (audited, on the board at once), upkeep, training."""

from __future__ import annotations

import json
import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.live import machine_key
from billing.models import AuditEntry, Machine, MachineService, QualificationGrant
from billing.qualifications import define
from billing.visits import open_visit
from tests.dashboard.conftest import PEPPER


def test_staff_put_a_machine_out_of_service_and_back_and_the_board_shows_it(
    staff: FlaskClient, db: Session, redis_client: Any
) -> None:
    page = staff.get("/machines/laser-1")
    assert page.status_code == 200 and "Mettre hors service" in page.text
    done = staff.post("/machines/laser-1/out", data={"out-reason": "tube à changer"}, follow_redirects=True)
    assert "Découpe laser est hors service." in done.text and "tube à changer" in done.text
    db.expire_all()
    assert db.get(Machine, "laser-1").out_of_service_reason == "tube à changer"  # type: ignore[union-attr]
    shown = json.loads(redis_client.hget(machine_key("laser-1"), "out_of_service"))
    assert shown["reason"] == "tube à changer" and shown["since"].endswith("+00:00")
    assert re.search(r'class="notice out-of-service">Hors service[^<]*: tube à changer<', staff.get("/live/").text)
    assert "Hors service : tube à changer" in staff.get("/desk/").text
    staff.post("/machines/laser-1/back", follow_redirects=True)
    assert redis_client.hget(machine_key("laser-1"), "out_of_service") == ""
    actions = [(a.actor, a.action) for a in db.scalars(select(AuditEntry).where(AuditEntry.subject == "machine laser-1"))]
    assert actions == [("bob", "out_of_service"), ("bob", "back_in_service")]


def test_an_empty_reason_is_refused_on_the_form(staff: FlaskClient, db: Session) -> None:
    page = staff.post("/machines/laser-1/out", data={"out-reason": "   "})
    assert page.status_code == 400 and "has-error" in page.text
    assert staff.get("/machines/nope").status_code == 404


def test_recording_a_service_keeps_it_in_the_log(staff: FlaskClient, db: Session) -> None:
    staff.post("/machines/printer-1/service", data={"service-what": "buse changée"}, follow_redirects=True)
    page = staff.get("/machines/printer-1")
    assert "buse changée" in page.text and "bob" in page.text
    assert db.scalars(select(MachineService)).one().what == "buse changée"


def test_only_an_admin_sets_thresholds_and_the_training_a_machine_needs(
    staff: FlaskClient, db: Session
) -> None:
    assert staff.post("/machines/laser-1/thresholds", data={"limits-hours": "200"}).status_code == 403
    assert staff.post("/machines/laser-1/qualification",
                      data={"training-code": "laser", "training-name": "découpe laser"}).status_code == 403  # fmt: skip


def test_an_admin_requires_a_training_and_the_desk_grants_a_supervised_session(
    admin: FlaskClient, db: Session
) -> None:
    admin.post("/machines/laser-1/qualification", data={"training-code": "laser", "training-name": "découpe laser"})
    admin.post("/machines/laser-1/thresholds", data={"limits-hours": "200"})
    db.expire_all()
    machine = db.get(Machine, "laser-1")
    assert machine is not None and machine.qualification is not None and machine.service_every_h == 200
    visit = open_visit(db, pepper=PEPPER, category="walk-in", actor="t").visit
    db.commit()
    page = admin.get(f"/desk/visit/{visit.id}")
    assert "session encadrée" in page.text
    admin.post(f"/desk/visit/{visit.id}/qualify", data={"grant-qualification": "laser"}, follow_redirects=True)
    row = db.scalars(select(QualificationGrant)).one()
    assert (row.visit_id, row.customer_id, row.granted_by) == (visit.id, None, "alice")  # anonymous: this visit only
    assert visit.label in admin.get("/machines/laser-1").text
    admin.post(f"/machines/laser-1/revoke/{row.id}", follow_redirects=True)
    db.expire_all()
    assert row.revoked_by == "alice" and visit.label not in admin.get("/machines/laser-1").text


def test_the_board_card_shows_the_last_refusal_and_upkeep_due(staff: FlaskClient, redis_client: Any,
                                                              db: Session) -> None:  # fmt: skip
    define(db, "laser", "découpe laser", machines=["laser-1"], actor="t")
    db.commit()
    redis_client.hset(machine_key("laser-1"), mapping={
        "machine": "laser-1", "last_refusal": json.dumps({"reason": "not_qualified", "at": "2026-03-14T10:00:00+00:00",
                                                          "message": "formation requise : découpe laser"}),
        "upkeep_due": json.dumps(["entretien toutes les 200 h : 212 h"]),
    })  # fmt: skip
    redis_client.sadd("fabmeter:machines", "laser-1")
    board = staff.get("/live/").text
    assert re.search(r"Refus[^<]*: formation requise : découpe laser<", board) and "entretien toutes les 200 h : 212 h" in board


def test_a_person_kept_by_their_badge_brings_a_sold_training_to_the_next_visit(
    admin: FlaskClient, db: Session
) -> None:
    from billing.models import CatalogueItem, Customer

    admin.post("/machines/laser-1/qualification", data={"training-code": "laser", "training-name": "découpe laser"})
    item = db.scalars(select(CatalogueItem).where(CatalogueItem.code == "training-laser")).one()
    training = db.get(Machine, "laser-1").qualification_id  # type: ignore[union-attr]
    sold = admin.post(f"/admin/items/{item.id}", data={"code": item.code, "name": item.name, "unit": item.unit,
                                                       "price": "15,00", "grants": str(training),
                                                       "validity_days": "365", "active": "y"})  # fmt: skip
    assert sold.status_code == 302
    visit = open_visit(db, pepper=PEPPER, category="walk-in", name="Léa", actor="t").visit
    db.commit()
    kept = admin.post(f"/desk/visit/{visit.id}/person", data={"person-badge": "0A1B2C3D"}, follow_redirects=True)
    assert "Cette personne sera retrouvée grâce à son badge." in kept.text
    admin.post(f"/desk/visit/{visit.id}/item", data={"item-item": "training-laser", "item-quantity": "1"})
    db.expire_all()
    person = db.scalars(select(Customer)).one()
    row = db.scalars(select(QualificationGrant)).one()
    assert (row.customer_id, row.visit_id, person.name) == (person.id, None, "Léa") and row.expires_at is not None
    again = open_visit(db, pepper=PEPPER, category="walk-in", badge_uid="0A1B2C3D", actor="t").visit
    assert again.customer_id == person.id
    forgot = open_visit(db, pepper=PEPPER, category="walk-in", actor="t").visit  # checked in without the badge
    db.commit()
    admin.post(f"/desk/visit/{forgot.id}/person", data={"person-badge": "0a1b2c3d"})  # scanning it finds them
    db.expire_all()
    assert forgot.customer_id == person.id and len(db.scalars(select(Customer)).all()) == 1
