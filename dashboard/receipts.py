"""The desk's link to the numbered receipts (``billing.receipts``) and the receipt printer.

    close(db, visit_id, "card", actor="alice")      # closes the visit, numbers its receipt, queues it
    document_of(db, visit_id)                        # the visit's receipt or invoice, or None
    reprint(db, visit_id, actor="alice")             # 'DUPLICATA n° 1'

Printing runs in a ``DeskPrinter`` thread of the dashboard process: a printer that is off or out
of paper fails the job (its error shows on the visit page), never the close.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import tzinfo

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from billing.config import PrinterConfig
from billing.documents import Document, PrintJob
from billing.errors import BillingError, NotFound
from billing.printing import EscposTransport, Transport, run_job
from billing.printing import reprint as reprint_document
from billing.receipts import close_with_receipt

log = logging.getLogger(__name__)


class DeskPrinter:
    """Prints, one at a time in a background thread, the receipts this process queued.

        printer = DeskPrinter(sessionmaker(engine), EscposTransport(config.printer), columns=42)
        printer.start(); printer.submit(job.id)

    Unlike a spooler that re-queues every pending job at start, it prints only what it was
    given: gunicorn runs several workers, and two of them must never print the same job.
    """

    def __init__(self, sessions: Callable[[], Session], transport: Transport, *, columns: int,
                 tz: tzinfo | None = None) -> None:  # fmt: skip
        self._sessions = sessions
        self.transport = transport
        self.columns = columns
        self.tz = tz
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="desk-printer", daemon=True)
        self._thread.start()

    def submit(self, job_id: int) -> None:
        self._queue.put(job_id)

    def wait_idle(self) -> None:
        self._queue.join()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while (job_id := self._queue.get()) is not None:
            try:
                self._print(job_id)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _print(self, job_id: int) -> None:
        # the thread's one catch-all for ledger errors: a broken job must not stop the next ones
        try:
            with self._sessions() as db:
                job = db.get(PrintJob, job_id)
                if job is not None and job.status == "pending":
                    run_job(db, job_id, self.transport, columns=self.columns, tz=self.tz)
        except (SQLAlchemyError, BillingError, ValueError, KeyError) as err:
            log.error("print job %s could not run: %s", job_id, err)


def install(app: Flask, sessions: Callable[[], Session], config: PrinterConfig, tz: tzinfo) -> None:
    """Start the desk's printer thread unless no printer is configured (``kind = "none"``)."""
    if config.kind == "none":
        return
    printer = DeskPrinter(sessions, EscposTransport(config), columns=config.columns, tz=tz)
    printer.start()
    app.extensions["fabmeter.printer"] = printer


def printer() -> DeskPrinter | None:
    found: DeskPrinter | None = current_app.extensions.get("fabmeter.printer")
    return found


def close(db: Session, visit_id: int, payment_method: str, *, actor: str) -> Document:
    """Close and number in one locked transaction (committed by billing), then queue the print."""
    db.commit()  # the document is numbered in a transaction of its own
    config = current_app.config["FABMETER"]
    return close_with_receipt(db, visit_id, payment_method, actor=actor,
                              organisation=config.organisation, spooler=printer())  # fmt: skip


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
        raise NotFound(f"visit {visit_id} has no receipt to print again")
    job = reprint_document(db, document.id, actor=actor)
    db.commit()
    desk_printer.submit(job.id)
    return job
