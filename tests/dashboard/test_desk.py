"""The desk: check-in with a PIN shown once, a visit's lines, items, discount, attach, close."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from billing.config import BillingConfig, PrinterConfig, ServerConfig
from billing.credentials import find_pin
from billing.ledger.documents import PrintJob
from billing.lockouts import count_wrong_pin, slowed_terminals
from billing.models import AuditEntry, Credential, UsageSession, Visit, utcnow
from billing.visits import open_visit
from tests.dashboard.conftest import PEPPER, login


def check_in(client: FlaskClient, **data: str) -> tuple[int, str]:
    response = client.post("/desk/check-in", data={"category": "walk-in", "with_pin": "y"} | data,
                           follow_redirects=True)  # fmt: skip
    assert response.status_code == 200, response.text
    found = re.search(r"/desk/visit/(\d+)", response.text)
    assert found is not None
    pin = re.search(r'<p class="pin" id="pin">(\d+)</p>', response.text)
    return int(found.group(1)), pin.group(1) if pin else ""


def close(client: FlaskClient, visit_id: int, method: str, **data: str) -> Any:
    """Close as staff do: choose the payment, read the amount, confirm."""
    form = {"close-payment_method": method} | data
    asked = client.post(f"/desk/visit/{visit_id}/close", data=form)
    if asked.status_code != 200:
        return asked
    expected = re.search(r'name="close-expected" type="hidden" value="(-?\d+)"', asked.text)
    assert expected is not None, asked.text
    return client.post(f"/desk/visit/{visit_id}/close",
                       data=form | {"close-confirm": "yes", "close-expected": expected.group(1)})  # fmt: skip


def new_visit(db: Session, **kw: object) -> int:
    visit = open_visit(db, pepper=PEPPER, category="walk-in", actor="test", **kw).visit  # type: ignore[arg-type]
    db.commit()
    return visit.id


def test_check_in_shows_a_working_pin_once(staff: FlaskClient, db: Session) -> None:
    response = staff.post("/desk/check-in", data={"category": "walk-in", "with_pin": "y"}, follow_redirects=True)
    assert response.headers["Cache-Control"] == "no-store"
    visit_id, pin = check_in(staff)
    assert len(pin) == 6
    credential = find_pin(db, PEPPER, pin)
    assert credential is not None and credential.visit_id == visit_id
    page = staff.get(f"/desk/visit/{visit_id}").text
    assert pin not in page and f"Visiteur {visit_id}" in page
    assert pin not in staff.get("/desk/").text


def test_named_check_in_with_a_loan_badge_and_no_pin(staff: FlaskClient, db: Session) -> None:
    visit_id, pin = check_in(staff, name="Camille", category="member", with_pin="", badge=" 0a1b2c3d ")
    assert pin == ""
    visit = db.get(Visit, visit_id)
    assert visit is not None and visit.label == "Camille" and visit.category.code == "member"
    assert [c.kind for c in visit.credentials] == ["badge"]
    assert "Camille" in staff.get("/desk/").text


def test_a_badge_held_by_another_open_visit_is_a_form_error(staff: FlaskClient, db: Session) -> None:
    check_in(staff, badge="0A1B2C3D")
    response = staff.post("/desk/check-in", data={"category": "walk-in", "badge": "0a1b2c3d"})
    assert response.status_code == 400
    assert "ce badge est déjà lié à la visite ouverte" in response.text
    assert db.query(Visit).count() == 1


def test_check_in_with_a_bad_category_is_a_form_error(staff: FlaskClient, db: Session) -> None:
    response = staff.post("/desk/check-in", data={"category": "martians", "name": "x" * 500})
    assert response.status_code == 400 and 'class="error"' in response.text
    assert db.query(Visit).count() == 0


def test_items_and_a_discount_show_on_the_visit_in_euros(staff: FlaskClient, db: Session) -> None:
    visit_id = new_visit(db)
    assert staff.post(f"/desk/visit/{visit_id}/item",
                      data={"item-item": "plywood-3mm", "item-quantity": "2"}).status_code == 302  # fmt: skip
    response = staff.post(f"/desk/visit/{visit_id}/discount",
                          data={"discount-amount": "1.25", "discount-reason": "chute réutilisée"})  # fmt: skip
    assert response.status_code == 302
    page = staff.get(f"/desk/visit/{visit_id}").text.replace("\u202f", " ").replace("\xa0", " ")
    assert "9,00 €" in page and "-1,25 €" in page
    assert re.search(r'id="total">7,75 €<', page)
    entry = db.query(AuditEntry).filter_by(action="discount").one()
    assert entry.actor == "bob" and "chute réutilisée" in (entry.detail or "")


def test_bad_amounts_and_missing_reasons_are_form_errors(staff: FlaskClient, db: Session) -> None:
    visit_id = new_visit(db)
    for url, data in [
        ("item", {"item-item": "plywood-3mm", "item-quantity": "abc"}),
        ("item", {"item-item": "plywood-3mm", "item-quantity": "-2"}),
        ("item", {"item-item": "no-such-item", "item-quantity": "1"}),
        ("discount", {"discount-amount": "2", "discount-reason": ""}),
        ("discount", {"discount-amount": "-2", "discount-reason": "why not"}),
        ("discount", {"discount-amount": "1e999", "discount-reason": "huge"}),
        ("close", {"close-payment_method": "bitcoin"}),
        ("attach", {"attach-session": "nope"}),
    ]:
        response = staff.post(f"/desk/visit/{visit_id}/{url}", data=data)
        assert response.status_code == 400, (url, data)
        assert 'class="error"' in response.text
    visit = db.get(Visit, visit_id)
    assert visit is not None and visit.lines == [] and visit.state == "open"


def test_unknown_visit_is_404(staff: FlaskClient) -> None:
    assert staff.get("/desk/visit/999").status_code == 404
    assert staff.post("/desk/visit/999/item", data={"item-item": "plywood-3mm", "item-quantity": "1"}).status_code in (400, 404)
    assert staff.post("/desk/visit/999/close", data={"close-payment_method": "cash"}).status_code in (400, 404)


def test_close_takes_the_payment_and_the_pin_stops_working(staff: FlaskClient, db: Session) -> None:
    visit_id, pin = check_in(staff)
    staff.post(f"/desk/visit/{visit_id}/item", data={"item-item": "mdf-3mm", "item-quantity": "1"})
    response = close(staff, visit_id, "card")
    assert response.status_code == 302
    db.expire_all()
    visit = db.get(Visit, visit_id)
    assert visit is not None and visit.state == "closed" and visit.payment_method == "card"
    assert find_pin(db, PEPPER, pin) is None
    page = staff.get(f"/desk/visit/{visit_id}").text
    assert "Carte" in page and 'id="close"' not in page
    assert 'id="refresh"' not in page  # nothing runs: the page stays put
    assert f"/desk/visit/{visit_id}" not in staff.get("/desk/").text
    again = staff.post(f"/desk/visit/{visit_id}/item", data={"item-item": "mdf-3mm", "item-quantity": "1"})
    assert again.status_code == 400 and "closed" in again.text


def _running_print(db: Session, visit_id: int | None) -> str:
    session_id = "6f0c2a3e-0000-4000-8000-000000000001"
    db.add(UsageSession(id=session_id, agent="pi-printer", machine_id="printer-1", visit_id=visit_id,
                        job="boat.gcode", expected_end_at=utcnow() + timedelta(hours=3)))  # fmt: skip
    db.commit()
    return session_id


def test_a_running_print_blocks_the_close_and_the_visit_can_wait(staff: FlaskClient, db: Session) -> None:
    visit_id = new_visit(db)
    _running_print(db, visit_id)
    page = staff.get(f"/desk/visit/{visit_id}").text
    assert "attend boat.gcode sur Imprimante 3D Prusa, fin à" in page
    assert 'id="refresh"' in page and "visit.js" in page  # follows the print until it ends
    response = close(staff, visit_id, "cash")
    assert response.status_code == 400 and "ne peut pas encore être clôturée : attend boat.gcode" in response.text
    assert staff.post(f"/desk/visit/{visit_id}/waiting").status_code == 302
    db.expire_all()
    assert db.get(Visit, visit_id).state == "waiting"  # type: ignore[union-attr]
    desk = staff.get("/desk/").text
    assert "attend boat.gcode sur Imprimante 3D Prusa" in desk and ">printer-1<" not in desk


def test_an_unclaimed_job_is_attached_at_the_desk(staff: FlaskClient, db: Session) -> None:
    visit_id = new_visit(db)
    session_id = _running_print(db, None)
    assert "boat.gcode" in staff.get("/desk/").text  # listed as unclaimed
    response = staff.post(f"/desk/visit/{visit_id}/attach", data={"attach-session": session_id})
    assert response.status_code == 302
    db.expire_all()
    assert db.get(UsageSession, session_id).visit_id == visit_id  # type: ignore[union-attr]


def test_a_locked_pin_is_unlocked_from_the_visit(staff: FlaskClient, db: Session) -> None:
    visit_id = new_visit(db)
    credential = db.query(Credential).filter_by(visit_id=visit_id).one()
    credential.locked, credential.failures = True, 5
    db.commit()
    assert "Débloquer" in staff.get(f"/desk/visit/{visit_id}").text
    assert staff.post(f"/desk/visit/{visit_id}/unlock/{credential.id}").status_code == 302
    db.expire_all()
    assert db.get(Credential, credential.id).locked is False  # type: ignore[union-attr]
    assert staff.post(f"/desk/visit/{visit_id + 1}/unlock/{credential.id}").status_code == 400


def test_closing_issues_a_numbered_receipt(staff: FlaskClient, db: Session) -> None:
    first, second = new_visit(db), new_visit(db)
    staff.post(f"/desk/visit/{first}/item", data={"item-item": "mdf-3mm", "item-quantity": "1"})
    close(staff, first, "cash")
    close(staff, second, "free")
    page = staff.get(f"/desk/visit/{first}").text
    assert 'id="receipt-number">R-000001<' in page and "Aucune imprimante" in page
    assert 'id="receipt-number">R-000002<' in staff.get(f"/desk/visit/{second}").text
    assert staff.post(f"/desk/visit/{first}/reprint").status_code == 302  # refused politely: no printer
    assert "Aucune imprimante de tickets" in staff.get(f"/desk/visit/{first}").text


def test_the_receipt_prints_in_the_background_and_again_as_a_duplicate(
    make_app: Callable[..., Flask], server_config: ServerConfig, db: Session
) -> None:
    app = make_app(FABMETER=replace(server_config, printer=PrinterConfig(kind="dummy")))
    client = app.test_client()
    login(client, "bob")
    visit_id = new_visit(db)
    client.post(f"/desk/visit/{visit_id}/item", data={"item-item": "mdf-3mm", "item-quantity": "1"})
    assert close(client, visit_id, "card").status_code == 302
    printer = app.extensions["fabmeter.printer"]
    assert printer.wait_idle(10)
    printed = printer.transport.dummy.output
    assert b"R-000001" in printed and b"DUPLICATA" not in printed
    assert "imprimé" in client.get(f"/desk/visit/{visit_id}").text
    assert client.post(f"/desk/visit/{visit_id}/reprint").status_code == 302
    assert printer.wait_idle(10)
    assert b"DUPLICATA" in printer.transport.dummy.output[len(printed):]
    jobs = db.query(PrintJob).order_by(PrintJob.id).all()
    assert [(j.copy, j.status) for j in jobs] == [(0, "done"), (1, "done")]
    printer.stop()


def test_a_pin_pad_slowed_by_wrong_pins_is_lifted_from_the_desk_and_audited(
    staff: FlaskClient, db: Session
) -> None:
    now = utcnow()
    for _ in range(7):
        count_wrong_pin(db, "laser-1", now, BillingConfig())
    db.commit()
    page = staff.get("/desk/").text
    assert 'id="held"' in page and "laser-1" in page
    assert staff.post("/desk/terminal/laser-1/lift").status_code == 302
    assert staff.post("/desk/terminal/no-such-machine/lift").status_code == 400
    db.expire_all()
    assert slowed_terminals(db, now) == {}
    assert 'id="held"' not in staff.get("/desk/").text
    entry = db.query(AuditEntry).filter_by(action="lift_terminal").one()
    assert (entry.actor, entry.subject, entry.detail) == ("bob", "terminal laser-1", "7 wrong PINs")


def test_locked_credentials_of_open_visits_are_listed_on_the_desk(
    staff: FlaskClient, db: Session
) -> None:
    visit_id = new_visit(db)
    credential = db.query(Credential).filter_by(visit_id=visit_id).one()
    credential.locked = True
    db.commit()
    page = staff.get("/desk/").text
    assert 'id="held"' in page and f"/desk/visit/{visit_id}/unlock/{credential.id}" in page


def test_check_in_defaults_to_walk_in_and_checks_the_badge_uid(staff: FlaskClient, db: Session) -> None:
    form = staff.get("/desk/check-in").text
    assert re.search(r'<option selected value="walk-in">|<option value="walk-in" selected>', form), form
    refused = staff.post("/desk/check-in", data={"category": "walk-in", "badge": "not a badge!"})
    assert refused.status_code == 400 and "pas un numéro de badge" in refused.text
    assert db.query(Visit).count() == 0
    visit_id, _pin = check_in(staff, with_pin="", badge="04:a2:b3:c4")
    visit = db.get(Visit, visit_id)
    assert visit is not None and [c.kind for c in visit.credentials] == ["badge"]
    bare = staff.post("/desk/check-in", data={"category": "walk-in"}, follow_redirects=True)
    assert bare.status_code == 200 and 'id="no-credential"' in bare.text and "rattachée" in bare.text


def test_reloading_the_check_in_result_makes_no_second_visit_and_no_second_pin(
    staff: FlaskClient, db: Session
) -> None:
    posted = staff.post("/desk/check-in", data={"category": "walk-in", "with_pin": "y", "name": "Camille"})
    assert posted.status_code == 303 and "/desk/checked-in/" in posted.headers["Location"]
    assert re.search(r"\d{6}", posted.headers["Location"] + posted.text) is None  # no PIN in the redirect
    first = staff.get(posted.headers["Location"])
    pin = re.search(r'<p class="pin" id="pin">(\d+)</p>', first.text)
    assert pin is not None and first.headers["Cache-Control"] == "no-store"
    reloaded = staff.get(posted.headers["Location"])
    assert pin.group(1) not in reloaded.text and 'id="pin-shown"' in reloaded.text
    assert db.query(Visit).count() == 1 and db.query(Credential).count() == 1
    credential = find_pin(db, PEPPER, pin.group(1))
    assert credential is not None and credential.visit.label == "Camille"


def test_the_pin_is_not_shown_after_a_minute_nor_in_another_browser(
    make_app: Callable[..., Flask], db: Session
) -> None:
    moments = [utcnow()]
    app = make_app(CLOCK=lambda: moments[-1])
    desk, other = app.test_client(), app.test_client()
    assert login(desk, "bob").status_code == 302 and login(other, "alice").status_code == 302
    posted = desk.post("/desk/check-in", data={"category": "walk-in", "with_pin": "y"})
    assert 'id="pin"' not in other.get(posted.headers["Location"]).text  # the token is in desk's session
    moments.append(moments[0] + timedelta(seconds=61))
    late = desk.get(posted.headers["Location"])
    assert 'id="pin"' not in late.text and 'id="pin-shown"' in late.text


def test_without_redis_the_pin_is_still_shown_once(make_app: Callable[..., Flask]) -> None:
    """A Redis that refuses connections (nothing listens on port 1): the session alone holds the token."""
    import redis

    app = make_app(REDIS=redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1))
    client = app.test_client()
    assert login(client, "bob").status_code == 302
    posted = client.post("/desk/check-in", data={"category": "walk-in", "with_pin": "y"})
    assert posted.status_code == 303
    assert 'id="pin"' in client.get(posted.headers["Location"]).text
    assert 'id="pin"' not in client.get(posted.headers["Location"]).text


def test_filament_known_after_the_close_waits_on_the_desk_until_dealt_with(staff: FlaskClient, db: Session) -> None:
    from billing.filament import correct_filament
    from billing.visits import close_visit
    from broker.messages import JobCorrected

    visit_id = new_visit(db)
    session = UsageSession(id="00000000-0000-4000-8000-0000000000f1", agent="pi-printer", machine_id="printer-1",
                           visit_id=visit_id, state="priced", job="big.gcode", filament_mm_milli=0)  # fmt: skip
    db.add(session)
    close_visit(db, visit_id, "cash", actor="alice")
    correct_filament(db, session, JobCorrected("local:big.gcode@1#2.1", "big.gcode", 4250.0, "estimate"))
    db.commit()
    page = staff.get("/desk/").text
    assert 'id="late-filament"' in page and "big.gcode" in page
    assert re.search(r"4\W250 mm de plus pour la visite \d+ \(close\)", page), page
    [form] = re.findall(r'action="(/desk/filament/\d+/dealt)"', page)
    assert staff.post(form).status_code == 302
    assert 'id="late-filament"' not in staff.get("/desk/").text
    assert staff.post(form).status_code == 302  # already dealt: said, not a 500
    assert staff.post("/desk/filament/999/dealt").status_code == 404
    entry = db.query(AuditEntry).filter_by(action="filament_correction_dealt").one()
    assert (entry.actor, entry.subject) == ("bob", f"session {session.id}")


def test_the_visit_page_counts_the_laser_minimum_as_the_board_does(staff: FlaskClient, db: Session,
                                                                   redis_client: Any) -> None:  # fmt: skip
    from billing.live import LiveState
    from broker.messages import AgentStatus, MachineState

    visit_id = new_visit(db)
    session_id = "6f0c2a3e-0000-4000-8000-000000000009"
    db.add(UsageSession(id=session_id, agent="pi-laser", machine_id="laser-1", visit_id=visit_id))
    db.commit()
    page = staff.get(f"/desk/visit/{visit_id}").text
    assert re.search(r'data-label="Coût actuel">0,00\s€<', page)  # not fired yet
    live = LiveState(redis_client)
    live.status("pi-laser", AgentStatus(online=True, bdseq=1, version="1", machines=("laser-1",)))
    live.state(MachineState(machine="laser-1", state="busy", wall_ns=0, session=session_id, elapsed_s=20))
    page = staff.get(f"/desk/visit/{visit_id}").text
    assert re.search(r'data-label="Coût actuel">2,50\s€<', page)  # seed: 5 minutes at least, 0,50 €/min
