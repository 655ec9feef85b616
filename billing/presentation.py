"""How a document reads for people (French): titles, payment methods, quantities, prices, dates.

    view = DocumentView.of(document, customer="Camille", tz=ZoneInfo("Europe/Paris"))
    view.title                 # 'TICKET R-000012'
    view.rows[0].detail        # '12 min × 0,50 €'

Shared by the thermal receipt and the A4 invoice, so both say the same thing. It reads the
document's hashed content plus the customer's name, which is looked up live (never hashed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from babel import Locale

from billing.ledger.chain import load, parse_utc
from billing.ledger.documents import Document
from billing.models import Visit
from billing.money import euros, format_eur

TITLES = {"receipt": "TICKET", "invoice": "FACTURE", "credit_note": "AVOIR"}
PAYMENTS = {
    "cash": "espèces",
    "card": "carte bancaire",
    "cheque": "chèque",
    "transfer": "virement",
    "free": "gratuit",
    "due": "à régler",
}


def payment_label(method: str) -> str:
    return PAYMENTS.get(method, method)


def quantity_text(quantity: str) -> str:
    """'12.000' → '12', '0.500' → '0,5'."""
    value = Decimal(quantity).normalize()
    text = f"{value:f}"
    return text.replace(".", ",")


# units written as symbols never take a plural ('3 min', '12,5 g'); words do ('2 plaques')
_SYMBOLS = {"s", "min", "h", "g", "kg", "mg", "m", "cm", "mm", "m²", "m2", "l", "cl", "ml"}
_FRENCH = Locale("fr")


def unit_text(unit: str, quantity: Decimal) -> str:
    """The unit as written after ``quantity`` in French: '1 plaque', '2 plaques', '1,5 plaque'.

    Babel's French plural rule decides (0 and 1,x are singular); a symbol, a unit that starts
    with a digit ('15 min') or a word already ending in s, x or z stays as it is.
    """
    if _FRENCH.plural_form(abs(quantity)) == "one" or not unit:
        return unit
    word, space, rest = unit.partition(" ")
    if not word or word in _SYMBOLS or word[0].isdigit() or word[-1] in "sxz" or not word.isalpha():
        return unit
    return f"{word}s{space}{rest}"


def price_text(price: str) -> str:
    """A unit price with two decimals, or more when it has them (0,025 €/g)."""
    value = Decimal(price).normalize()
    exponent = value.as_tuple().exponent
    places = max(2, -exponent if isinstance(exponent, int) else 2)
    return format_eur(value, places=min(places, 5))


def cents_text(cents: int) -> str:
    return format_eur(euros(cents))


def local_time(text: str, tz: tzinfo) -> datetime:
    return parse_utc(text).astimezone(tz)


def customer_name(visit: Visit | None) -> str | None:
    """The name to print, or None for an anonymous visit (or once the person was erased)."""
    if visit is None:
        return None
    if visit.customer is not None:
        name = visit.customer.company_name or visit.customer.name
        if name:
            return name
    label = (visit.label or "").strip()
    if not label or label == f"Visiteur {visit.id}" or label == "…":
        return None
    return label


@dataclass(frozen=True)
class Row:
    """One line of a document as printed."""

    description: str
    detail: str
    amount: str


@dataclass(frozen=True)
class DocumentView:
    """A document ready to lay out on paper or A4, from its hashed content."""

    reference: str
    kind: str
    title: str
    issued_at: datetime
    seller: dict[str, str]
    customer: str | None
    customer_ref: str | None
    rows: tuple[Row, ...]
    total: str
    tax: tuple[str, ...]
    payment: str
    credit_note_of: str | None
    reason: str | None
    hash: str
    content: dict[str, Any]

    @classmethod
    def of(
        cls, document: Document, *, customer: str | None, tz: tzinfo
    ) -> DocumentView:
        content = load(document.content)
        return cls(
            reference=document.reference, kind=document.kind,
            title=f"{TITLES[document.kind]} {document.reference}",
            issued_at=local_time(content["issued_at"], tz), seller=content["seller"],
            customer=customer, customer_ref=content.get("customer_ref"),
            rows=tuple(_row(line) for line in content["lines"]), total=cents_text(content["total_cents"]),
            tax=tax_lines(content["tax"]), payment=_payment(content), credit_note_of=content["credit_note_of"],
            reason=content["reason"], hash=document.hash, content=content,
        )  # fmt: skip


def line_detail(quantity: str, unit: str, unit_price: str) -> str:
    """'2 plaques × 4,50 €/plaque', '12,676 g × 0,06 €/g', '3 × 15 min à 0,25 €'; '' for one of nothing.

    A line of one without a unit (a discount, a start fee) says everything in its description
    and amount: it prints as 'Remise : fidélité  -1,00 €', never as '1 × -1,00 €'.
    """
    amount = Decimal(quantity)
    if not unit:
        return "" if amount == 1 else f"{quantity_text(quantity)} × {price_text(unit_price)}"
    if unit[0].isdigit():  # a block of time: '3 × 15 min'
        return f"{quantity_text(quantity)} × {unit} à {price_text(unit_price)}"
    return f"{quantity_text(quantity)} {unit_text(unit, amount)} × {price_text(unit_price)}/{unit}"


def _row(line: dict[str, Any]) -> Row:
    detail = line_detail(line["quantity"], line["unit"], line["unit_price"])
    return Row(line["description"], detail, cents_text(line["amount_cents"]))


def _payment(content: dict[str, Any]) -> str:
    """'Payé par carte bancaire : 10,00 €', one line per method of a split payment."""
    if content["total_cents"] == 0:
        return "Gratuit : 0,00 €"
    return "\n".join(
        f"{'Remboursé' if cents < 0 else 'Payé'} par {payment_label(method)} : {cents_text(abs(cents))}"
        for method, cents in content["payments"].items()
    )


def tax_lines(tax: dict[str, Any]) -> tuple[str, ...]:
    """'TVA non applicable, art. 293 B du CGI', or the HT / TVA / TTC block."""
    if tax["regime"] != "vat":
        return (tax["mention"],) if tax.get("mention") else ()
    rate = quantity_text(tax["rate"])
    lines = (
        f"Total HT : {cents_text(tax['net_cents'])}",
        f"TVA {rate} % : {cents_text(tax['vat_cents'])}",
        f"Total TTC : {cents_text(tax['gross_cents'])}",
    )
    return lines + ((tax["mention"],) if tax.get("mention") else ())
