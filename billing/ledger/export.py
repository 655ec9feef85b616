"""The accountant's export: one ``;``-separated row per document line, comma decimals.

    text = export_csv(db, date(2026, 11, 1), date(2026, 12, 1), tz=PARIS, by="machine")

Columns: date;numero;type;client;compte;libelle;montant;reglement. The account is a sales
account per machine (``706-laser-1``), per catalogue item (``707-plywood-3mm``), discounts on
``709``; or, with ``by="category"``, per customer category (``706-walk-in``). Amounts of
credit notes are negative. Everything comes from the documents' hashed content.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.csvcells import safe_row
from billing.errors import InvalidOperation
from billing.ledger.chain import load
from billing.ledger.documents import Document
from billing.presentation import TITLES

HEADER = ("date", "numero", "type", "client", "compte", "libelle", "montant", "reglement")
GROUPINGS = ("machine", "category")


def account(line: dict[str, Any], category: str, by: str) -> str:
    """Which sales account a line goes to."""
    if line["kind"] == "discount":
        return "709"
    if line.get("item") and not line.get("machine"):
        return f"707-{line['item']}"
    if by == "category":
        return f"706-{category}"
    return f"706-{line.get('machine') or 'divers'}"


def amount_text(cents: int) -> str:
    """'1234,50' and '-12,00': what French spreadsheets and accounting tools read."""
    return f"{Decimal(cents) / 100:.2f}".replace(".", ",")


def documents_between(db: Session, start: datetime, end: datetime) -> list[Document]:
    query = select(Document).where(Document.issued_at >= start, Document.issued_at < end)
    return list(db.scalars(query.order_by(Document.issued_at, Document.series, Document.number)))


def rows(document: Document, *, tz: tzinfo, by: str) -> list[tuple[str, ...]]:
    content = load(document.content)
    day = document.issued_at.astimezone(tz).strftime("%d/%m/%Y")
    kind = TITLES[document.kind].lower()
    return [
        (
            day,
            document.reference,
            kind,
            document.customer_ref or "",
            account(line, content["category"], by),
            line["description"],
            amount_text(line["amount_cents"]),
            "+".join(content["payments"]),
        )  # fmt: skip
        for line in content["lines"]
    ]


def export_csv(db: Session, first: date, end: date, *, tz: tzinfo, by: str = "machine") -> str:
    """Every line of every document issued from ``first`` up to (not including) ``end``."""
    if by not in GROUPINGS:
        raise InvalidOperation("accounts go by %(choices)s, not %(by)r", choices=" or ".join(GROUPINGS), by=by)
    if end <= first:
        raise InvalidOperation("the export period ends (%(end)s) before it starts (%(first)s)", end=end, first=first)
    start_at = datetime.combine(first, time.min, tzinfo=tz)
    end_at = datetime.combine(end, time.min, tzinfo=tz)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    for document in documents_between(db, start_at, end_at):
        writer.writerows(safe_row(row) for row in rows(document, tz=tz, by=by))
    return out.getvalue()
