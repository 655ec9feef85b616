"""A company's A4 invoice: HTML and PDF with a French invoice's mentions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from billing.errors import InvalidOperation
from billing.ledger.chain import verify
from billing.ledger.invoice import buyer_of, invoice_html, invoice_pdf, invoice_text
from billing.ledger.receipts import close_with_receipt, issue_credit_note
from billing.models import Customer, Visit
from tests.receipts.conftest import ORG, company_visit

ISSUED = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)


def _invoice(db: Session, method: str = "due"):  # type: ignore[no-untyped-def]
    visit_id = company_visit(db)
    visit = db.get(Visit, visit_id)
    assert visit is not None
    visit.opened_at = ISSUED.replace(hour=9)  # the service date, not the day the test runs
    db.commit()
    return close_with_receipt(db, visit_id, method, actor="alice", organisation=ORG, now=ISSUED)


MENTIONS = (
    "FACTURE F-000001", "Fablab du Val", "1 place de la Mairie", "SIRET : 123 456 789 00012",
    "Atelier Bois &amp; Fils SARL", "12 rue des Scieurs", "00100 Bourg", "SIREN : 552 100 554",
    "Date d&#x27;émission : 26/11/2026", "Date de la prestation : 26/11/2026",
    "Pénalités de retard : trois fois le taux d&#x27;intérêt légal",
    "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40,00 €",
    "Escompte : pas d&#x27;escompte pour paiement anticipé", "TVA non applicable, art. 293 B du CGI",
    "Formation découpe laser", "Total : 33,00 €",
)  # fmt: skip


def test_an_invoice_left_to_pay_gives_its_due_date_and_the_b2b_mentions(db: Session) -> None:
    invoice = _invoice(db, "due")
    html = invoice_html(invoice, buyer_of(invoice), tz=ORG.zone)
    for mention in (*MENTIONS, "Date d&#x27;échéance : 26/12/2026", "À régler avant le 26/12/2026 : 33,00 €"):
        assert mention in html, mention
    assert "Payé" not in html


def test_an_invoice_paid_at_the_desk_says_when_and_how_and_has_no_due_date(db: Session) -> None:
    """The finding: closed by transfer, it said "Payé par virement" and a due date a month later."""
    invoice = _invoice(db, "transfer")
    html = invoice_html(invoice, buyer_of(invoice), tz=ORG.zone)
    for mention in (*MENTIONS, "Payée le 26/11/2026 par virement : 33,00 €"):
        assert mention in html, mention
    assert "Date d&#x27;échéance" not in html and "régler" not in html


def test_invoice_pdf_renders_with_the_mentions(db: Session) -> None:
    invoice = _invoice(db, "due")
    pdf = invoice_pdf(invoice, buyer_of(invoice), tz=ORG.zone, compress=False)
    assert pdf.startswith(b"%PDF-")
    for mention in (
        "FACTURE F-000001", "SIRET : 123 456 789 00012", "SIREN : 552 100 554", "Atelier Bois & Fils SARL",
        "Date d'échéance : 26/12/2026", "TVA non applicable, art. 293 B du CGI", "Total : 33,00 €",
        "40,00 €",
    ):  # fmt: skip
        assert mention.encode("cp1252") in pdf, mention
    assert invoice_pdf(invoice, buyer_of(invoice), tz=ORG.zone).startswith(b"%PDF-")  # compressed, as served


def test_a_credit_note_on_an_invoice_says_what_it_cancels(db: Session) -> None:
    invoice = _invoice(db, "transfer")
    note = issue_credit_note(db, invoice.id, "formation annulée", actor="bob", now=ISSUED)
    html = invoice_html(note, buyer_of(note), tz=ORG.zone)
    assert (
        "AVOIR A-000001" in html
        and "Avoir sur la facture F-000001 — motif : formation annulée" in html
    )
    assert "Total : -33,00 €" in html and "Remboursé par virement : 33,00 €" in html


def test_a_visit_that_spans_days_gives_the_period_of_the_service(db: Session) -> None:
    """A 30-hour print picked up the next day: the invoice names both days, in Paris time."""
    opened = datetime(2026, 11, 24, 22, 30, tzinfo=UTC)  # 23:30 in Paris on the 24th
    picked_up = datetime(2026, 11, 26, 7, 15, tzinfo=UTC)  # 08:15 on the 26th
    invoice = close_with_receipt(
        db, company_visit(db, opened), "transfer", actor="alice", organisation=ORG, now=picked_up
    )
    html = invoice_html(invoice, buyer_of(invoice), tz=ORG.zone)
    assert "Période de la prestation : du 24/11/2026 au 26/11/2026" in html
    assert "Date de la prestation" not in html


def test_invoice_dates_are_the_organisations_days_not_utcs(db: Session) -> None:
    """Opened 00:30 and closed 23:50 in Paris on one day: UTC would say two days, Paris says one."""
    opened = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # 00:30 on the 26th in Paris
    closed = datetime(2026, 11, 26, 22, 50, tzinfo=UTC)  # 23:50 on the 26th in Paris
    invoice = close_with_receipt(
        db, company_visit(db, opened), "due", actor="alice", organisation=ORG, now=closed
    )
    html = invoice_html(invoice, buyer_of(invoice), tz=ORG.zone)
    assert "Date de la prestation : 26/11/2026" in html
    assert "Date d&#x27;émission : 26/11/2026" in html
    assert "Date d&#x27;échéance : 26/12/2026" in html


def test_editing_the_customer_later_changes_no_issued_invoice(db: Session) -> None:
    invoice = _invoice(db, "due")
    before = invoice_html(invoice, buyer_of(invoice), tz=ORG.zone)
    customer = db.query(Customer).filter_by(ref="C0007").one()
    customer.company_name, customer.company_address, customer.siren = "Autre SAS", "1 rue Neuve", "732829320"
    db.commit()
    assert invoice_html(invoice, buyer_of(invoice), tz=ORG.zone) == before
    assert "Autre SAS" not in before and verify(db) is None


def test_the_buyer_names_its_vat_number_siret_and_foreign_country(db: Session) -> None:
    visit_id = company_visit(db)
    customer = db.query(Customer).filter_by(ref="C0007").one()
    customer.country, customer.postcode, customer.siren = "BE", "1000", ""
    customer.vat_number, customer.city = "BE0403170701", "Bruxelles"
    db.commit()
    invoice = close_with_receipt(db, visit_id, "due", actor="alice", organisation=ORG, now=ISSUED)
    text = invoice_text(invoice, buyer_of(invoice), tz=ORG.zone)
    assert text.buyer == ("Atelier Bois & Fils SARL", "12 rue des Scieurs", "1000 Bruxelles", "BELGIQUE",
                          "N° TVA intracommunautaire : BE0403170701")  # fmt: skip


def test_a_siret_is_named_as_such(db: Session) -> None:
    visit_id = company_visit(db)
    customer = db.query(Customer).filter_by(ref="C0007").one()
    customer.siren, customer.vat_number = "55210055400013", "FR96552100554"
    db.commit()
    invoice = close_with_receipt(db, visit_id, "card", actor="alice", organisation=ORG, now=ISSUED)
    text = invoice_text(invoice, buyer_of(invoice), tz=ORG.zone)
    assert text.buyer[-2:] == ("SIRET : 552 100 554 00013", "N° TVA intracommunautaire : FR96552100554")


def test_a_company_visit_without_a_complete_company_customer_does_not_close(db: Session) -> None:
    visit_id = company_visit(db)
    customer = db.query(Customer).filter_by(ref="C0007").one()
    customer.siren = None
    db.commit()
    with pytest.raises(InvalidOperation, match="siren: Required"):
        close_with_receipt(db, visit_id, "due", actor="alice", organisation=ORG, now=ISSUED)
    assert db.get(Visit, visit_id).state == "open"  # type: ignore[union-attr]
