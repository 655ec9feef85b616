"""The desk's link to the numbered receipts (``billing.ledger.receipts``) and the receipt printer.

    close(db, visit_id, "card", actor="alice")      # closes the visit, numbers its receipt, queues it
    document_of(db, visit_id)                        # the visit's receipt or invoice, or None
    reprint(db, visit_id, actor="alice")             # 'DUPLICATA n° 1'

Printing runs in a ``PrintSpooler`` thread of each dashboard process; a job is printed by the
worker that claims it, and jobs left by a worker that died are taken up by the others' scans:
a printer that is off or out of paper fails the job (its error shows on the visit page), never
the close.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import tzinfo
from decimal import Decimal
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.config import PrinterConfig
from billing.errors import NotFound
from billing.ledger.chain import load
from billing.ledger.documents import Document, PrintJob
from billing.ledger.printing import EscposTransport, PrintSpooler
from billing.ledger.printing import reprint as reprint_document
from billing.ledger.receipts import (
    close_with_receipt,
    credit_notes_of,
    creditable,
    issue_credit_note,
)
from billing.payments import Payment
from dashboard import formats

log = logging.getLogger(__name__)


def install(app: Flask, sessions: Callable[[], Session], config: PrinterConfig, tz: tzinfo) -> None:
    """Start the desk's printer thread unless no printer is configured (``kind = "none"``)."""
    if config.kind == "none":
        return
    printer = PrintSpooler(sessions, EscposTransport(config), columns=config.columns, tz=tz,
                           claim_timeout_s=config.claim_timeout_s)  # fmt: skip
    printer.start()
    app.extensions["fabmeter.printer"] = printer


def printer() -> PrintSpooler | None:
    found: PrintSpooler | None = current_app.extensions.get("fabmeter.printer")
    return found


def close(db: Session, visit_id: int, payment_method: Payment, *, actor: str) -> Document:
    """Close and number in one locked transaction (committed by billing), then queue the print."""
    db.commit()  # the document is numbered in a transaction of its own
    config = current_app.config["FABMETER"]
    return close_with_receipt(db, visit_id, payment_method, actor=actor,
                              organisation=config.organisation, spooler=printer(),
                              now=formats.now())  # fmt: skip


def credit(
    db: Session, visit_id: int, reason: str, lines: dict[int, Decimal] | None, method: str, *, actor: str
) -> Document:  # fmt: skip
    """A credit note on the visit's receipt (numbered A-…), queued for the printer like any document."""
    document = document_of(db, visit_id)
    if document is None:
        raise NotFound("visit %(visit)s has no receipt to credit", visit=visit_id)
    db.commit()  # the credit note is numbered in a transaction of its own
    return issue_credit_note(db, document.id, reason, actor=actor, lines=lines, method=method,
                             spooler=printer())  # fmt: skip


def creditable_lines(db: Session, document: Document | None) -> list[tuple[int, dict[str, Any], Decimal]]:
    """Each line of the receipt with its position and the quantity not yet given back."""
    if document is None or document.kind == "credit_note":
        return []
    lines = load(document.content)["lines"]
    return [(i, line, left) for i, (line, (left, _cents)) in enumerate(zip(lines, creditable(db, document), strict=True))]


def credit_notes(db: Session, document: Document | None) -> list[Document]:
    return [] if document is None else credit_notes_of(db, document.id)


def document_of(db: Session, visit_id: int) -> Document | None:
    """The visit's receipt or invoice (not a credit note)."""
    query = select(Document).where(Document.visit_id == visit_id, Document.credit_note_of.is_(None))
    return db.scalars(query.order_by(Document.id)).first()


def last_job(db: Session, document: Document | None) -> PrintJob | None:
    if document is None:
        return None
    query = select(PrintJob).where(PrintJob.document_id == document.id).order_by(PrintJob.id.desc())
    return db.scalars(query).first()


def reprint(db: Session, visit_id: int, *, actor: str) -> PrintJob:
    """Queue a duplicate of the visit's receipt."""
    desk_printer = printer()
    if desk_printer is None:
        raise NotFound('no receipt printer is configured ([printer] kind = "none" in server.toml)')
    document = document_of(db, visit_id)
    if document is None:
        raise NotFound("visit %(visit)s has no receipt to print again", visit=visit_id)
    job = reprint_document(db, document.id, actor=actor)
    db.commit()
    desk_printer.submit(job.id)
    return job
