"""A company's A4 invoice: HTML and PDF with a French invoice's mentions."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from billing.ledger.invoice import buyer_of, invoice_html, invoice_pdf
from billing.ledger.receipts import close_with_receipt, issue_credit_note
from billing.models import Visit
from tests.receipts.conftest import ORG, company_visit

ISSUED = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)


def _invoice(db: Session):  # type: ignore[no-untyped-def]
    visit_id = company_visit(db)
    visit = db.get(Visit, visit_id)
    assert visit is not None
    visit.opened_at = ISSUED.replace(hour=9)  # the service date, not the day the test runs
    db.commit()
    return close_with_receipt(db, visit_id, "transfer", actor="alice", organisation=ORG, now=ISSUED)


def test_invoice_html_has_the_mentions_of_a_french_invoice(db: Session) -> None:
    invoice = _invoice(db)
    html = invoice_html(invoice, buyer_of(invoice), tz=ORG.zone)
    for mention in (
        "FACTURE F-000001", "Fablab du Val", "1 place de la Mairie", "SIRET : 123 456 789 00012",
        "Atelier Bois &amp; Fils SARL", "12 rue des Scieurs", "SIREN : 552 100 554",
        "Date d&#x27;émission : 26/11/2026", "Date de la prestation : 26/11/2026",
        "Date d&#x27;échéance : 26/12/2026", "trois fois le taux d&#x27;intérêt légal",
        "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40,00 €",
        "TVA non applicable, art. 293 B du CGI", "Formation découpe laser", "Total : 33,00 €",
        "Payé par virement : 33,00 €",
    ):  # fmt: skip
        assert mention in html, mention


def test_invoice_pdf_renders_with_the_mentions(db: Session) -> None:
    invoice = _invoice(db)
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
    invoice = _invoice(db)
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
        db, company_visit(db, opened), "transfer", actor="alice", organisation=ORG, now=closed
    )
    html = invoice_html(invoice, buyer_of(invoice), tz=ORG.zone)
    assert "Date de la prestation : 26/11/2026" in html
    assert "Date d&#x27;émission : 26/11/2026" in html
    assert "Date d&#x27;échéance : 26/12/2026" in html
