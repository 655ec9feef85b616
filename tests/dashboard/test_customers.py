"""Customers at the desk: the /customers page, a customer chosen or created at check-in, a
company's visit closed to an invoice that names its buyer, and invoices paid later."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.ledger.chain import load, verify
from billing.ledger.documents import Document, InvoicePayment
from billing.models import AuditEntry, Customer, Visit
from billing.tariffs import category_by_code
from tests.dashboard.test_desk import check_in, close

COMPANY = {"kind": "company", "company_name": "Atelier Bois & Fils SARL", "name": "Léa Martin",
           "company_address": "12 rue des Scieurs", "postcode": "01000", "city": "Bourg-en-Bresse",
           "country": "FR", "siren": "552 100 554", "vat_number": "FR96552100554",
           "email": "lea@atelier-bois.fr"}  # fmt: skip


def _create(client: FlaskClient, **fields: str) -> int:
    response = client.post("/customers/new", data=fields)
    assert response.status_code == 302, response.text
    found = re.search(r"/customers/(\d+)$", response.headers["Location"])
    assert found is not None
    return int(found.group(1))


def test_a_company_is_created_edited_listed_and_audited(staff: FlaskClient, db: Session) -> None:
    customer_id = _create(staff, **COMPANY)
    page = staff.get(f"/customers/{customer_id}").text
    assert "Atelier Bois &amp; Fils SARL" in page and 'value="552100554"' in page
    assert staff.post(f"/customers/{customer_id}", data=COMPANY | {"city": "Belley"}).status_code == 302
    listed = staff.get("/customers/?q=belley").text
    assert "Atelier Bois" in listed and f"/desk/check-in?customer={customer_id}" in listed
    assert "Atelier Bois" not in staff.get("/customers/?q=lyon").text
    actions = [(e.actor, e.action, e.detail) for e in db.scalars(select(AuditEntry).where(
        AuditEntry.action.in_(("create_customer", "edit_customer"))).order_by(AuditEntry.id))]  # fmt: skip
    assert actions[0][:2] == ("bob", "create_customer") and actions[1] == ("bob", "edit_customer", "city")


def test_wrong_details_are_shown_in_french_beside_their_field(staff: FlaskClient, db: Session) -> None:
    response = staff.post("/customers/new", data=COMPANY | {
        "siren": "552100555", "vat_number": "FR40303265045", "email": "lea", "postcode": "",
        "company_name": "Atelier\x1b[2J"})  # fmt: skip
    assert response.status_code == 400
    text = response.text
    for message in ("La clé de contrôle de ce numéro est fausse", "Écrivez une adresse e-mail comme",
                    "Nécessaire pour la facture d&#39;une entreprise", "Retirez les caractères de contrôle"):  # fmt: skip
        assert message in text, message
    assert db.scalars(select(Customer)).all() == []


def test_hostile_text_is_stored_as_text_and_shown_escaped(staff: FlaskClient, db: Session) -> None:
    customer_id = _create(staff, name='<script>alert("x")</script>', city="=HYPERLINK(\"http://x\")")
    page = staff.get("/customers/?q=script").text
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert db.get(Customer, customer_id).city == '=HYPERLINK("http://x")'  # type: ignore[union-attr]


def test_a_person_needs_a_name(staff: FlaskClient) -> None:
    response = staff.post("/customers/new", data={"kind": "person", "name": " "})
    assert response.status_code == 400 and "Un client a besoin d&#39;un nom" in response.text


def test_an_unknown_customer_is_404(staff: FlaskClient) -> None:
    assert staff.get("/customers/999").status_code == 404


def test_check_in_with_an_existing_customer(staff: FlaskClient, db: Session) -> None:
    customer_id = _create(staff, **COMPANY)
    form = staff.get(f"/desk/check-in?customer={customer_id}").text
    assert f'<option selected value="{customer_id}">' in form
    assert '<option selected value="company">' in form  # a company customer: its category
    visit_id, _pin = check_in(staff, category="company", customer=str(customer_id))
    visit = db.get(Visit, visit_id)
    assert visit is not None and visit.customer_id == customer_id and visit.label == "Atelier Bois & Fils SARL"


def test_check_in_creates_the_customer_in_the_same_form(staff: FlaskClient, db: Session) -> None:
    new = {f"new-{key}": value for key, value in COMPANY.items()}
    visit_id, _pin = check_in(staff, category="company", customer="new", **new)
    visit = db.get(Visit, visit_id)
    assert visit is not None and visit.customer is not None and visit.customer.siren == "552100554"


def test_a_wrong_new_customer_opens_no_visit_and_keeps_what_was_typed(staff: FlaskClient, db: Session) -> None:
    new = {f"new-{key}": value for key, value in (COMPANY | {"siren": "552100555"}).items()}
    response = staff.post("/desk/check-in", data={"category": "company", "customer": "new", "with_pin": "y"} | new)
    assert response.status_code == 400 and "La clé de contrôle de ce numéro est fausse" in response.text
    assert 'value="Atelier Bois &amp; Fils SARL"' in response.text
    assert db.scalars(select(Visit)).all() == [] and db.scalars(select(Customer)).all() == []


def test_a_company_visit_needs_a_company_customer(staff: FlaskClient, db: Session) -> None:
    person = _create(staff, name="Camille Durand")
    for customer in ("", str(person)):
        response = staff.post("/desk/check-in", data={"category": "company", "customer": customer, "with_pin": "y"})
        assert response.status_code == 400 and "Une visite d&#39;entreprise a besoin d&#39;un client entreprise" in response.text
    assert db.scalars(select(Visit)).all() == []


def _company_visit(staff: FlaskClient) -> int:
    visit_id, _pin = check_in(staff, category="company", customer=str(_create(staff, **COMPANY)))
    assert staff.post(f"/desk/visit/{visit_id}/item", data={"item-item": "plywood-3mm", "item-quantity": "2"}).status_code == 302
    return visit_id


def test_a_company_visit_closes_to_an_invoice_naming_its_buyer_frozen(staff: FlaskClient, db: Session) -> None:
    visit_id = _company_visit(staff)
    assert close(staff, visit_id, "transfer").status_code == 302
    invoice = db.scalars(select(Document).where(Document.visit_id == visit_id)).one()
    buyer = load(invoice.content)["buyer"]
    assert (invoice.reference, buyer["name"], buyer["siren"], buyer["vat_number"], buyer["city"]) == (
        "F-000001", "Atelier Bois & Fils SARL", "552100554", "FR96552100554", "Bourg-en-Bresse")  # fmt: skip
    customer_id = db.get(Visit, visit_id).customer_id  # type: ignore[union-attr]
    staff.post(f"/customers/{customer_id}", data=COMPANY | {"company_name": "Nouveau Nom SAS"})
    db.expire_all()
    assert load(db.get(Document, invoice.id).content)["buyer"]["name"] == "Atelier Bois & Fils SARL"  # type: ignore[union-attr]
    assert verify(db) is None


def test_a_walk_in_cannot_choose_payment_due(staff: FlaskClient, db: Session) -> None:
    visit_id, _pin = check_in(staff)
    staff.post(f"/desk/visit/{visit_id}/item", data={"item-item": "plywood-3mm", "item-quantity": "1"})
    response = close(staff, visit_id, "due")
    assert response.status_code == 400 and "seule la facture d&#39;une entreprise peut" in response.text
    assert "only a company" not in response.text  # the refusal reads in French, not in English
    assert db.get(Visit, visit_id).state == "open"  # type: ignore[union-attr]


def test_an_invoice_left_to_pay_is_listed_then_paid_at_the_desk(
    make_app: object, staff: FlaskClient, app: Flask, db: Session
) -> None:
    app.config["CLOCK"] = lambda: datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    visit_id = _company_visit(staff)
    assert close(staff, visit_id, "due").status_code == 302
    invoice = db.scalars(select(Document).where(Document.visit_id == visit_id)).one()
    assert load(invoice.content)["invoice"]["due_date"] == "2027-01-02"  # 30 days, the default
    assert "Paiement à recevoir : 9,00\xa0€" in staff.get(f"/desk/visit/{visit_id}").text
    listed = staff.get("/desk/unpaid/").text
    assert "F-000001" in listed and "Atelier Bois" in listed and "02/01/2027" in listed and "9,00" in listed
    future = staff.post(f"/desk/unpaid/{invoice.id}/pay", data={"method": "cheque", "paid_on": "2026-12-04"})
    assert future.status_code == 400 and "not 04/12/2026" in future.text
    nonsense = staff.post(f"/desk/unpaid/{invoice.id}/pay", data={"method": "cheque", "paid_on": "2026-02-30"})
    assert nonsense.status_code == 400
    no_method = staff.post(f"/desk/unpaid/{invoice.id}/pay", data={"paid_on": "2026-12-03"})
    assert no_method.status_code == 400 and db.scalars(select(InvoicePayment)).all() == []
    paid = staff.post(f"/desk/unpaid/{invoice.id}/pay", data={"method": "cheque", "paid_on": "2026-12-03"})
    assert paid.status_code == 302 and paid.headers["Location"].endswith("/desk/unpaid/")
    assert "Paiement de F-000001 enregistré" in (listed := staff.get("/desk/unpaid/").text)
    assert f'id="unpaid-{invoice.id}"' not in listed and "Aucune facture n'attend son paiement" in listed
    assert "Payée le 03/12/2026 par chèque : 9,00\xa0€" in staff.get(f"/desk/visit/{visit_id}").text
    again = staff.post(f"/desk/unpaid/{invoice.id}/pay", data={"method": "cheque", "paid_on": "2026-12-03"})
    assert again.status_code == 400 and len(db.scalars(select(InvoicePayment)).all()) == 1
    assert db.scalars(select(InvoicePayment)).one().paid_on == date(2026, 12, 3)


def test_overdue_invoices_come_first_and_are_marked(staff: FlaskClient, app: Flask, db: Session) -> None:
    app.config["CLOCK"] = lambda: datetime(2026, 10, 1, 10, 0, tzinfo=UTC)
    first = _company_visit(staff)
    close(staff, first, "due")  # due 31/10/2026
    app.config["CLOCK"] = lambda: datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    second = _company_visit(staff)
    close(staff, second, "due")  # due 20/12/2026
    page = staff.get("/desk/unpaid/").text
    assert page.index("F-000001") < page.index("F-000002")
    assert page.count("en retard") == 1


def test_every_customer_problem_has_a_french_translation() -> None:
    """billing.customers marks its messages with N_; the dashboard translates them at run time."""
    from babel.messages.pofile import read_po

    from billing import customers
    from tests.dashboard.test_cli_i18n import TRANSLATIONS

    messages = [value for name, value in vars(customers).items() if name.isupper() and isinstance(value, str)
                and name not in ("VAT_COUNTRIES",)]  # fmt: skip
    with open(TRANSLATIONS / "messages.po", "rb") as po:
        catalog = read_po(po)
    assert len(messages) >= 13
    assert [m for m in messages if not getattr(catalog.get(m), "string", None)] == []


def _payment_options(client: FlaskClient, visit_id: int) -> list[str]:
    page = client.get(f"/desk/visit/{visit_id}").text
    select = page[page.index('<select id="close-payment_method"'):]
    return re.findall(r'<option[^>]* value="([a-z]*)"', select[: select.index("</select>")])


def test_payment_due_is_offered_only_where_an_invoice_is_issued(staff: FlaskClient, db: Session) -> None:
    walk_in, _pin = check_in(staff)
    assert "due" not in _payment_options(staff, walk_in)
    assert "due" in _payment_options(staff, _company_visit(staff))


def test_a_visit_is_billed_to_a_customer_from_its_page(staff: FlaskClient, db: Session) -> None:
    """A company visit opened before customers were checked (here: made so in the database) cannot
    close until it names a complete company; a person is refused; the change is audited."""
    visit_id, _pin = check_in(staff)
    visit = db.get(Visit, visit_id)
    assert visit is not None
    visit.category = category_by_code(db, "company")
    db.commit()
    staff.post(f"/desk/visit/{visit_id}/item", data={"item-item": "plywood-3mm", "item-quantity": "1"})
    assert close(staff, visit_id, "transfer").status_code == 400
    person = _create(staff, name="Camille Durand")
    refused = staff.post(f"/desk/visit/{visit_id}/customer", data={"customer-customer": str(person)})
    assert refused.status_code == 400 and "est celle d&#39;une entreprise" in refused.text
    company = _create(staff, **COMPANY)
    assert staff.post(f"/desk/visit/{visit_id}/customer", data={"customer-customer": str(company)}).status_code == 302
    page = staff.get(f"/desk/visit/{visit_id}").text
    assert "Atelier Bois &amp; Fils SARL" in page and f"/customers/{company}" in page
    assert close(staff, visit_id, "due").status_code == 302
    db.expire_all()
    assert db.scalars(select(Document).where(Document.visit_id == visit_id)).one().reference == "F-000001"
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "set_customer")).one()
    assert entry.subject == f"visit {visit_id}" and entry.detail == db.get(Customer, company).ref  # type: ignore[union-attr]
    closed = staff.post(f"/desk/visit/{visit_id}/customer", data={"customer-customer": str(person)})
    assert closed.status_code == 400 and db.get(Visit, visit_id).customer_id == company  # type: ignore[union-attr]


def test_an_erased_customer_is_not_offered_at_check_in(staff: FlaskClient, db: Session) -> None:
    customer_id = _create(staff, name="Camille Durand")
    customer = db.get(Customer, customer_id)
    assert customer is not None
    customer.erased_at, customer.name = datetime(2026, 12, 1, tzinfo=UTC), None
    db.commit()
    form = staff.get(f"/desk/check-in?customer={customer_id}").text
    assert f'value="{customer_id}"' not in form and staff.get(f"/customers/{customer_id}").status_code == 404
