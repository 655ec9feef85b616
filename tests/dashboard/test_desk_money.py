"""The desk as a till: corrections before the close, a confirmed close, split payments, credit notes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from billing.config import PrinterConfig, ServerConfig
from billing.ledger.documents import Document
from billing.models import AuditEntry, Visit
from tests.dashboard.conftest import login
from tests.dashboard.test_desk import close, new_visit


def _item(client: FlaskClient, visit_id: int, code: str, quantity: str) -> None:
    response = client.post(f"/desk/visit/{visit_id}/item", data={"item-item": code, "item-quantity": quantity})
    assert response.status_code == 302, response.text


def test_a_discount_beyond_the_total_is_refused_on_the_form(staff: FlaskClient, db: Session) -> None:
    visit_id = new_visit(db)
    _item(staff, visit_id, "plywood-3mm", "1")
    response = staff.post(f"/desk/visit/{visit_id}/discount",
                          data={"discount-amount": "80", "discount-reason": "erreur"})  # fmt: skip
    assert response.status_code == 400 and "dépasse le total de la visite (4,50 €)" in response.text
    visit = db.get(Visit, visit_id)
    assert visit is not None and [line.kind for line in visit.lines] == ["item"]


def test_a_wrong_line_is_taken_back_with_a_reason_shown_on_the_visit(staff: FlaskClient, db: Session) -> None:
    visit_id = new_visit(db)
    _item(staff, visit_id, "plywood-3mm", "3")
    visit = db.get(Visit, visit_id)
    assert visit is not None
    line_id = visit.lines[0].id
    no_reason = staff.post(f"/desk/visit/{visit_id}/correct", data={"correct-line": line_id, "correct-quantity": "2"})
    assert no_reason.status_code == 400
    reduced = staff.post(f"/desk/visit/{visit_id}/correct",
                         data={"correct-line": line_id, "correct-quantity": "2", "correct-reason": "une rendue"})  # fmt: skip
    assert reduced.status_code == 302
    page = staff.get(f"/desk/visit/{visit_id}").text
    assert 'id="total">9,00' in page and "une rendue" in page and 'id="corrections"' in page
    staff.post(f"/desk/visit/{visit_id}/correct", data={"correct-line": line_id, "correct-reason": "pas pour lui"})
    db.expire_all()
    assert db.get(Visit, visit_id).lines == []  # type: ignore[union-attr]
    actions = [e.action for e in db.query(AuditEntry).filter_by(subject=f"visit {visit_id}")]
    assert actions[-2:] == ["reduce_line", "remove_line"]


def test_closing_asks_for_a_method_then_confirms_the_amount(staff: FlaskClient, db: Session) -> None:
    visit_id = new_visit(db)
    _item(staff, visit_id, "plywood-3mm", "2")
    page = staff.get(f"/desk/visit/{visit_id}").text
    select = page[page.index('<select id="close-payment_method"'):]
    select = select[: select.index("</select>")]
    assert '<option value="">' in select and "selected" not in select  # nothing chosen for staff
    unchosen = staff.post(f"/desk/visit/{visit_id}/close", data={"close-payment_method": ""})
    assert unchosen.status_code == 400 and "Choisissez" in unchosen.text
    asked = staff.post(f"/desk/visit/{visit_id}/close", data={"close-payment_method": "card"})
    assert asked.status_code == 200 and 'id="confirm-total">9,00' in asked.text and "Carte" in asked.text
    db.expire_all()
    assert db.get(Visit, visit_id).state == "open"  # type: ignore[union-attr]
    _item(staff, visit_id, "mdf-3mm", "1")  # the total moved after the confirmation was shown
    stale = staff.post(f"/desk/visit/{visit_id}/close", data={"close-payment_method": "card",
                                                              "close-confirm": "yes", "close-expected": "900"})  # fmt: skip
    assert stale.status_code == 400 and "le total a changé" in stale.text
    assert close(staff, visit_id, "card").status_code == 302


def test_part_card_part_cash(staff: FlaskClient, db: Session) -> None:
    visit_id = new_visit(db)
    _item(staff, visit_id, "plywood-3mm", "2")  # 9,00 €
    split = {"close-second_method": "cash", "close-second_amount": "2,50"}
    asked = staff.post(f"/desk/visit/{visit_id}/close", data={"close-payment_method": "card"} | split)
    assert "6,50" in asked.text and "2,50" in asked.text
    assert close(staff, visit_id, "card", **split).status_code == 302
    document = db.query(Document).filter_by(visit_id=visit_id).one()
    assert json.loads(document.content)["payments"] == {"card": 650, "cash": 250}
    too_much = new_visit(db)
    _item(staff, too_much, "mdf-3mm", "1")
    refused = close(staff, too_much, "card", **{"close-second_method": "cash", "close-second_amount": "5"})
    assert refused.status_code == 400 and "dépasser 0,00" in refused.text


def test_one_plate_is_credited_from_the_visit_page_and_printed(
    make_app: Callable[..., Flask], server_config: ServerConfig, db: Session
) -> None:
    app = make_app(FABMETER=replace(server_config, printer=PrinterConfig(kind="dummy")))
    client = app.test_client()
    login(client, "bob")
    visit_id = new_visit(db)
    _item(client, visit_id, "plywood-3mm", "3")
    assert close(client, visit_id, "cash").status_code == 302
    page = client.get(f"/desk/visit/{visit_id}").text
    assert 'name="credit-line-0"' in page
    nothing = client.post(f"/desk/visit/{visit_id}/credit", data={"credit-reason": "rendue", "credit-method": "cash"})
    assert nothing.status_code == 400
    response = client.post(f"/desk/visit/{visit_id}/credit", data={"credit-line-0": "1", "credit-reason": "une plaque rendue",
                                                                   "credit-method": "cash"})  # fmt: skip
    assert response.status_code == 302
    printer = app.extensions["fabmeter.printer"]
    assert printer.wait_idle(10)
    assert b"AVOIR A-000001" in printer.transport.dummy.output
    page = client.get(f"/desk/visit/{visit_id}").text
    assert "A-000001" in page and "-4,50" in page
    note = db.query(Document).filter_by(series="A").one()
    assert note.total_cents == -450
    printer.stop()


def test_french_numbers_are_parsed_on_the_server(staff: FlaskClient, db: Session) -> None:
    """'2,5' plates and a '1,50' discount as typed in a browser without French locale data."""
    import re

    visit_id = new_visit(db)
    page = staff.get(f"/desk/visit/{visit_id}").text
    quantity = re.search(r'<input[^>]*id="item-quantity"[^>]*>', page)
    assert quantity is not None and 'inputmode="decimal"' in quantity.group(0) and 'type="text"' in quantity.group(0)
    assert 'value="1"' in quantity.group(0)  # prefilled the French way, not "1.000"
    _item(staff, visit_id, "plywood-3mm", "2,5")
    response = staff.post(f"/desk/visit/{visit_id}/discount",
                          data={"discount-amount": "1,50", "discount-reason": "fidélité"})  # fmt: skip
    assert response.status_code == 302, response.text
    db.expire_all()
    visit = db.get(Visit, visit_id)
    assert visit is not None and [str(line.quantity.normalize()) for line in visit.lines][0] == "2.5"
    too_big = staff.post(f"/desk/visit/{visit_id}/discount",
                         data={"discount-amount": "150 000", "discount-reason": "x"})  # fmt: skip
    assert too_big.status_code == 400
    assert re.search(r"entre 0,01 et 100\s000", too_big.text), too_big.text
    not_a_number = staff.post(f"/desk/visit/{visit_id}/item", data={"item-item": "mdf-3mm", "item-quantity": "1.234,5"})
    assert not_a_number.status_code == 400 and "1 234,50" in not_a_number.text
