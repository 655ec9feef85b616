"""The desk's link to the numbered receipts (``billing.receipts``) and the receipt printer.

    close(db, visit_id, "card", actor="alice")      # closes the visit and issues its receipt
    document_of(db, visit_id)                        # the visit's receipt/invoice, or None
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.visits import close_visit

try:
    from billing.documents import Document
    from billing.receipts import close_with_receipt
except ImportError:  # receipts not installed in this tree yet: close without a document
    Document = None  # type: ignore[assignment,misc]
    close_with_receipt = None  # type: ignore[assignment]


def spooler() -> Any:
    return current_app.extensions.get("fabmeter.spooler")


def close(db: Session, visit_id: int, payment_method: str, *, actor: str) -> Any:
    """Close and number in one locked transaction (committed by billing), then print."""
    if close_with_receipt is None:
        return close_visit(db, visit_id, payment_method, actor=actor)
    db.commit()  # the document is numbered in a transaction of its own
    config = current_app.config["FABMETER"]
    return close_with_receipt(db, visit_id, payment_method, actor=actor,
                              organisation=config.organisation, spooler=spooler())  # fmt: skip


def document_of(db: Session, visit_id: int) -> Any:
    """The visit's first document (its receipt or invoice), not a credit note."""
    if Document is None:
        return None
    query = select(Document).where(Document.visit_id == visit_id, Document.credit_note_of.is_(None))
    return db.scalars(query.order_by(Document.id)).first()


def reprint(db: Session, visit_id: int, *, actor: str) -> None:
    raise NotImplementedError
