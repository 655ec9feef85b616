"""A company's A4 invoice (or credit note), as HTML and as PDF, with a French invoice's mentions.

    buyer = buyer_of(document)            # the company's name, address, SIREN and VAT number
    html = invoice_html(document, buyer, tz=organisation.zone)
    pdf = invoice_pdf(document, buyer, tz=organisation.zone)    # bytes starting with b"%PDF"

The buyer and the terms (the due date of an invoice left to pay, the late-payment rate, the
40 € recovery indemnity, no early-payment discount) are fixed in the document's hashed content
when it is issued, from the customer and ``InvoiceTerms``. An invoice paid at the desk says
"Payée le … par …" and has no due date; one left to pay says "À régler avant le …".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from fpdf import FPDF

from billing.config import OrganisationConfig
from billing.ledger.chain import load
from billing.ledger.documents import Document
from billing.ledger.printable import printable
from billing.presentation import DocumentView, cents_text, customer_name, payment_label

LEGAL_INDEMNITY_CENTS = 4000  # Code de commerce, art. D441-5


def terms_for(organisation: OrganisationConfig) -> InvoiceTerms:
    """The invoice terms the organisation's settings give."""
    return InvoiceTerms(
        due_days=organisation.payment_due_days,
        late_rate=organisation.late_payment_rate,
        timezone=organisation.timezone,
    )


@dataclass(frozen=True)
class InvoiceTerms:
    """Payment terms printed on invoices; recorded in each invoice when it is issued.

    InvoiceTerms(due_days=30).mentions(visit.opened_at, visit.closed_at, now)["due_date"]  # '2026-12-26'

    A service that spans days (a 30-hour print picked up the next day) also records its last day
    (``service_end_date``), and the invoice gives the period instead of one date.
    """

    due_days: int = 30
    late_rate: str = "trois fois le taux d'intérêt légal"
    recovery_indemnity_cents: int = LEGAL_INDEMNITY_CENTS
    early_payment: str = "pas d'escompte pour paiement anticipé"
    timezone: str = "Europe/Paris"

    def mentions(
        self, service_start: datetime, service_end: datetime, issued: datetime, *, due: bool = True
    ) -> dict[str, object]:
        """The terms to record; ``due`` for an invoice left to pay (only it has a due date)."""
        tz = ZoneInfo(self.timezone)
        first, last = service_start.astimezone(tz).date(), service_end.astimezone(tz).date()
        period = {"service_end_date": last.isoformat()} if last > first else {}
        due_date = (issued.astimezone(tz) + timedelta(days=self.due_days)).date().isoformat()
        return {
            "service_date": first.isoformat(),
            **period,
            **({"due_date": due_date} if due else {}),
            "late_rate": self.late_rate,
            "recovery_indemnity_cents": self.recovery_indemnity_cents,
            "early_payment": self.early_payment,
        }


@dataclass(frozen=True)
class Buyer:
    """Who the invoice is addressed to: as frozen in it, or (an older one) the customer now."""

    name: str
    address: str
    siren: str | None
    vat_number: str | None = None


def buyer_of(document: Document) -> Buyer:
    frozen = load(document.content).get("buyer")
    if frozen:
        place = " ".join(part for part in (frozen.get("postcode"), frozen.get("city")) if part)
        country = frozen.get("country")
        lines = [frozen.get("address") or "", place, *([_country(country)] if country and country != "FR" else [])]
        return Buyer(name=frozen["name"], address="\n".join(line for line in lines if line),
                     siren=_spaced(frozen.get("siren")), vat_number=frozen.get("vat_number"))  # fmt: skip
    visit = document.visit
    customer = visit.customer if visit is not None else None
    name = customer_name(visit) or (document.customer_ref or "Client")
    address = (customer.company_address or "") if customer is not None else ""
    return Buyer(name=name, address=address, siren=customer.siren if customer is not None else None)


def _spaced(number: str | None) -> str | None:
    """'552100554' → '552 100 554', a SIRET '552 100 554 00013'."""
    if not number:
        return None
    return " ".join(number[i : i + 3] for i in range(0, 9, 3)) + (f" {number[9:]}" if len(number) > 9 else "")


def _country(code: str) -> str:
    return str(Locale("fr").territories.get(code, code)).upper()


def _day(iso: str) -> str:
    year, month, day = iso.split("-")
    return f"{day}/{month}/{year}"


@dataclass(frozen=True)
class InvoiceText:
    """Every text block of the invoice, in order, for both the HTML and the PDF."""

    title: str
    seller: tuple[str, ...]
    buyer: tuple[str, ...]
    dates: tuple[str, ...]
    rows: tuple[tuple[str, str, str], ...]
    totals: tuple[str, ...]
    mentions: tuple[str, ...]


def invoice_text(document: Document, buyer: Buyer, *, tz: tzinfo) -> InvoiceText:
    """The invoice's texts; its issue date is read in ``tz``, the organisation's time zone."""
    view = DocumentView.of(document, customer=buyer.name, tz=tz)
    seller = view.seller
    terms = view.content.get("invoice") or {}
    dates = [f"Date d'émission : {view.issued_at:%d/%m/%Y}"]
    if terms:
        dates.append(_service(terms))
    if terms.get("due_date"):
        dates.append(f"Date d'échéance : {_day(terms['due_date'])}")
    if view.credit_note_of:
        dates.append(f"Avoir sur la facture {view.credit_note_of} — motif : {view.reason}")
    return InvoiceText(
        title=view.title,
        seller=(seller["name"], *seller["address"].splitlines(), f"SIRET : {seller['siret']}"),
        buyer=(buyer.name, *buyer.address.splitlines(), *_identifiers(buyer)),
        dates=tuple(dates),
        rows=tuple((r.description, r.detail, r.amount) for r in view.rows),
        totals=(f"Total : {view.total}", *view.tax, *_settlement(view, terms)),
        mentions=_mentions(terms),
    )  # fmt: skip


def _identifiers(buyer: Buyer) -> tuple[str, ...]:
    label = "SIRET" if buyer.siren and len(buyer.siren.replace(" ", "")) == 14 else "SIREN"
    return (*((f"{label} : {buyer.siren}",) if buyer.siren else ()),
            *((f"N° TVA intracommunautaire : {buyer.vat_number}",) if buyer.vat_number else ()))  # fmt: skip


def _settlement(view: DocumentView, terms: dict[str, Any]) -> tuple[str, ...]:
    """'À régler avant le 26/12/2026 : 33,00 €', or 'Payée le 26/11/2026 par virement : 33,00 €'."""
    if view.kind != "invoice" or view.content["total_cents"] == 0:
        return tuple(view.payment.splitlines())
    if terms.get("due_date"):
        return (f"À régler avant le {_day(terms['due_date'])} : {view.total}",)
    return tuple(
        f"Payée le {view.issued_at:%d/%m/%Y} par {payment_label(method)} : {cents_text(cents)}"
        for method, cents in view.content["payments"].items()
    )


def _service(terms: dict[str, Any]) -> str:
    """'Date de la prestation : 26/11/2026', or the period of a service that spans days."""
    if terms.get("service_end_date"):
        return f"Période de la prestation : du {_day(terms['service_date'])} au {_day(terms['service_end_date'])}"
    return f"Date de la prestation : {_day(terms['service_date'])}"


def _mentions(terms: dict[str, object]) -> tuple[str, ...]:
    if not terms:
        return ()
    indemnity = terms["recovery_indemnity_cents"]
    assert isinstance(indemnity, int)
    return (
        f"Pénalités de retard : {terms['late_rate']}, exigibles dès le lendemain de l'échéance.",
        f"Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : {cents_text(indemnity)}.",
        f"Escompte : {terms['early_payment']}.",
    )


def invoice_html(document: Document, buyer: Buyer, *, tz: tzinfo) -> str:
    """A self-contained A4 page (print it from the browser, or keep it beside the PDF)."""
    text = invoice_text(document, buyer, tz=tz)

    def block(lines: tuple[str, ...], css: str) -> str:
        return f'<div class="{css}">' + "<br>".join(escape(line) for line in lines) + "</div>"

    rows = "".join(
        f"<tr><td>{escape(d)}</td><td>{escape(q)}</td><td class=n>{escape(a)}</td></tr>"
        for d, q, a in text.rows
    )
    return (
        f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>{escape(text.title)}</title>'
        f"<style>{_CSS}</style></head><body>"
        f"{block(text.seller, 'seller')}{block(text.buyer, 'buyer')}<h1>{escape(text.title)}</h1>"
        f"{block(text.dates, 'dates')}<table><thead><tr><th>Désignation</th><th>Quantité × prix unitaire</th>"
        f"<th class=n>Montant</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{block(text.totals, 'totals')}{block(text.mentions, 'mentions')}</body></html>"
    )


_CSS = (
    "@page{size:A4;margin:18mm}body{font-family:sans-serif;font-size:11pt}"
    ".buyer{margin-left:55%;margin-top:2em}table{width:100%;border-collapse:collapse;margin:1.5em 0}"
    "th,td{border-bottom:1px solid #999;padding:4px;text-align:left}.n{text-align:right}"
    ".totals{text-align:right;font-weight:bold}.mentions{margin-top:2em;font-size:9pt}"
)


def _latin(text: str) -> str:
    """What the PDF's core font can show (Windows-1252, which has €, French accents, “ ” and —)."""
    return printable(text, code_page="cp1252")


def invoice_pdf(document: Document, buyer: Buyer, *, tz: tzinfo, compress: bool = True) -> bytes:
    text = invoice_text(document, buyer, tz=tz)
    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = "cp1252"
    pdf.set_compression(compress)
    pdf.set_title(text.title)
    pdf.add_page()
    _pdf_lines(pdf, text.seller, size=10)
    pdf.set_x(pdf.l_margin + 100)
    _pdf_lines(pdf, text.buyer, size=10, indent=100)
    pdf.ln(6)
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(text=_latin(text.title), new_x="LMARGIN", new_y="NEXT")
    _pdf_lines(pdf, text.dates, size=10)
    pdf.ln(4)
    _pdf_table(pdf, text.rows)
    pdf.ln(4)
    _pdf_lines(pdf, text.totals, size=11, style="B", align="R")
    pdf.ln(6)
    _pdf_lines(pdf, text.mentions, size=8)
    return bytes(pdf.output())


def _pdf_lines(pdf: FPDF, lines: tuple[str, ...], *, size: int, style: str = "", align: str = "L",
               indent: float = 0) -> None:  # fmt: skip
    pdf.set_font("helvetica", style, size)
    for line in lines:
        pdf.set_x(pdf.l_margin + indent)
        pdf.multi_cell(
            w=0, h=size * 0.5, text=_latin(line), align=align, new_x="LMARGIN", new_y="NEXT"
        )


def _pdf_table(pdf: FPDF, rows: tuple[tuple[str, str, str], ...]) -> None:
    pdf.set_font("helvetica", "", 9)
    with pdf.table(col_widths=(95, 55, 30), text_align=("LEFT", "LEFT", "RIGHT")) as table:
        for cells in (("Désignation", "Quantité × prix unitaire", "Montant"), *rows):
            row = table.row()
            for cell in cells:
                row.cell(_latin(cell))
