"""The receipt printer: ESC/POS bytes of a document, and a background spooler that sends them.

    spooler = PrintSpooler(sessions, EscposTransport(config.printer), columns=config.printer.columns)
    spooler.start()
    close_with_receipt(db, visit_id, "cash", actor="alice", organisation=org, spooler=spooler)
    reprint(db, document_id, actor="alice")          # a new job: 'DUPLICATA n° 1'

A receipt is rendered once into bytes with python-escpos's ``Dummy`` printer (so what a test
reads is exactly what the printer gets), then written to the real device in one go. Closing a
visit only queues a job: a printer that is off, unplugged or out of paper fails the job (its
error is kept for the desk), never the close. python-escpos 3.1 forgets the code page it sent
after an INIT or a font change, so CP858 (which has €) is selected again after each of them.
"""

from __future__ import annotations

import logging
import queue
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import tzinfo
from typing import Any, Protocol

from escpos.exceptions import Error as EscposError
from escpos.printer import Dummy
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.config import PrinterConfig
from billing.errors import BillingError, NotFound
from billing.ledger.documents import Closure, Document, PrintJob
from billing.models import utcnow
from billing.presentation import DocumentView, customer_name

log = logging.getLogger(__name__)

CODE_PAGE = "CP858"


class PrinterUnavailable(BillingError, OSError):
    """The receipt printer could not take a receipt; the message says which printer and what to check."""


# ---------------------------------------------------------------- layout


def _select_code_page(printer: Any) -> None:
    """Send ESC t for CP858 now, even if python-escpos believes it is still selected."""
    printer.magic.encoding = None
    printer.charcode(CODE_PAGE)


def _init(printer: Any) -> None:
    printer.hw("INIT")
    _select_code_page(printer)


def _font(printer: Any, font: str) -> None:
    printer.set(font=font)
    _select_code_page(printer)


def _pair(left: str, right: str, columns: int) -> str:
    """'Total ........ 12,40 €' on one line of ``columns``; the left side is cut if needed."""
    room = columns - len(right) - 1
    return f"{left[:room]:<{room}} {right}"


def _para(printer: Any, text: str, columns: int) -> None:
    """Free text (a name, an address, a mention) wrapped to the paper's width."""
    for part in textwrap.wrap(text, columns) or [""]:
        printer.textln(part)


def _rule(printer: Any, columns: int) -> None:
    printer.textln("-" * columns)


def render_receipt(view: DocumentView, *, columns: int = 42, copy: int = 0) -> bytes:
    """The ESC/POS bytes of a document on a receipt printer of ``columns`` (42 or 48)."""
    printer = Dummy()
    _init(printer)
    _heading(printer, view, copy, columns)
    _rule(printer, columns)
    for row in view.rows:
        _para(printer, row.description, columns)
        printer.textln(_pair("  " + row.detail, row.amount, columns))
    _rule(printer, columns)
    printer.set(bold=True)
    printer.textln(_pair("TOTAL", view.total, columns))
    printer.set(bold=False)
    for line in view.tax:
        _para(printer, line, columns)
    for line in view.payment.splitlines():
        _para(printer, line, columns)
    _footer(printer, view, columns)
    printer.cut()
    output: bytes = printer.output
    return output


def _heading(printer: Any, view: DocumentView, copy: int, columns: int) -> None:
    printer.set(align="center", bold=True, double_height=True)
    _para(printer, view.seller["name"], columns)
    printer.set(bold=False, normal_textsize=True)
    for line in view.seller["address"].splitlines():
        _para(printer, line, columns)
    _para(printer, f"SIRET {view.seller['siret']}", columns)
    printer.ln()
    printer.set(bold=True)
    printer.textln(view.title)
    if copy:
        printer.textln(f"DUPLICATA n° {copy}")
    printer.set(bold=False, align="left")
    printer.textln(f"{view.issued_at:%d/%m/%Y %H:%M}")
    if view.credit_note_of:
        _para(printer, f"Annule {view.credit_note_of} : {view.reason}", columns)
    if view.customer:
        _para(printer, f"Client : {view.customer}", columns)


def _footer(printer: Any, view: DocumentView, columns: int) -> None:
    printer.ln()
    printer.set(align="center")
    printer.qr(f"{view.reference} {view.hash}", native=True, size=4)
    _font(printer, "b")
    printer.textln(view.reference)
    for part in textwrap.wrap(view.hash, columns):
        printer.textln(part)
    _font(printer, "a")
    printer.set(align="left")
    printer.textln("Merci et à bientôt !")


def fingerprint_text(digest: str) -> str:
    """The first 16 hex digits of a closure's hash in groups of four, as the Z ticket shows them."""
    return " ".join(digest[i : i + 4] for i in range(0, 16, 4))


def render_closure(closure: Closure, organisation: str, *, columns: int = 42) -> bytes:
    """The Z ticket of a closure: totals per payment method, grand total and its EMPREINTE."""
    from billing.ledger.chain import load
    from billing.presentation import cents_text, payment_label

    printer = Dummy()
    _init(printer)
    printer.set(align="center", bold=True)
    printer.textln(f"TICKET Z {closure.kind.upper()} n° {closure.number}")
    printer.set(bold=False)
    _para(printer, organisation, columns)
    printer.textln(closure.period)
    printer.set(align="left")
    _rule(printer, columns)
    for method, cents in sorted(load(closure.content)["totals"].items()):
        printer.textln(_pair(payment_label(method), cents_text(cents), columns))
    _rule(printer, columns)
    printer.textln(_pair("TOTAL", cents_text(closure.total_cents), columns))
    printer.textln(_pair("Total perpétuel", cents_text(closure.grand_total_cents), columns))
    printer.ln()
    printer.set(bold=True)
    printer.textln(f"EMPREINTE {fingerprint_text(closure.hash)}")
    printer.set(bold=False)
    printer.cut()
    output: bytes = printer.output
    return output


# ---------------------------------------------------------------- transport


class Transport(Protocol):
    """Something that takes a receipt's bytes to paper."""

    def send(self, data: bytes) -> None: ...


def open_printer(config: PrinterConfig) -> Any:
    """The python-escpos printer object of the ``[printer]`` settings (not opened yet)."""
    from escpos import printer as escpos

    timeout = config.timeout_s
    if config.kind == "serial":
        return escpos.Serial(devfile=config.device, baudrate=config.baudrate, timeout=timeout)
    if config.kind == "usb":
        return escpos.Usb(config.usb_vendor, config.usb_product, timeout=int(timeout * 1000))
    if config.kind == "network":
        return escpos.Network(host=config.host or "", port=config.port, timeout=timeout)
    if config.kind == "file":
        return escpos.File(devfile=str(config.path))
    if config.kind == "dummy":
        return Dummy()
    raise PrinterUnavailable('no receipt printer is configured ([printer] kind = "none")')


def where(config: PrinterConfig) -> str:
    places = {"serial": config.device, "usb": f"USB {config.usb_vendor:04x}:{config.usb_product:04x}",
              "network": f"{config.host}:{config.port}", "file": str(config.path)}  # fmt: skip
    return places.get(config.kind, config.kind)


class EscposTransport:
    """Opens the configured printer for each receipt, writes its bytes and closes it again.

    With ``kind = "dummy"`` every receipt is appended to ``self.dummy`` (demo and tests).
    """

    def __init__(self, config: PrinterConfig, *, connect: Callable[[], Any] | None = None) -> None:
        self.config = config
        self.dummy = Dummy() if config.kind == "dummy" else None
        self._connect = connect or (
            lambda: self.dummy if self.dummy is not None else open_printer(config)
        )

    def send(self, data: bytes) -> None:
        printer = self._connect()
        try:
            printer.open()
            printer._raw(data)
        except (EscposError, OSError, ValueError) as err:
            raise PrinterUnavailable(
                f"receipt printer at {where(self.config)} did not take the receipt ({err}) — "
                "is it switched on, plugged in, with paper?"
            ) from err
        finally:
            _close_quietly(printer)


def _close_quietly(printer: Any) -> None:
    try:
        printer.close()
    except (EscposError, OSError) as err:  # a printer that vanished may fail to close, too
        log.debug("closing the printer: %s", err)


# ---------------------------------------------------------------- jobs


def reprint(db: Session, document_id: int, *, actor: str) -> PrintJob:
    """A duplicate of a document that was already issued (even if its first print failed)."""
    document = db.get(Document, document_id)
    if document is None:
        raise NotFound(f"no document {document_id}")
    last = db.scalar(select(func.max(PrintJob.copy)).where(PrintJob.document_id == document_id))
    job = PrintJob(document_id=document_id, copy=(last or 0) + 1, requested_by=actor)
    db.add(job)
    audit(db, actor, "reprint", document.reference, f"DUPLICATA n° {job.copy}")
    db.flush()
    return job


def run_job(
    db: Session, job_id: int, transport: Transport, *, columns: int, tz: tzinfo
) -> PrintJob:
    """Print one job now and record the outcome (done, or failed with the printer's error)."""
    job = db.get(PrintJob, job_id)
    if job is None:
        raise NotFound(f"no print job {job_id}")
    view = DocumentView.of(job.document, customer=customer_name(job.document.visit), tz=tz)
    job.attempts += 1
    try:
        transport.send(render_receipt(view, columns=columns, copy=job.copy))
    except PrinterUnavailable as err:
        job.status, job.error = "failed", str(err)
        log.warning("receipt %s not printed: %s", view.reference, err)
    else:
        job.status, job.error, job.printed_at = "done", None, utcnow()
    db.commit()
    return job


class PrintSpooler:
    """A background thread that prints queued jobs one at a time, so the desk never waits.

    spooler = PrintSpooler(sessionmaker(engine), EscposTransport(cfg.printer), tz=org.zone)
    spooler.start(); spooler.submit(job.id); spooler.wait_idle(5); spooler.stop()

    With ``resume_pending=False`` it prints only what it is given: gunicorn runs several
    dashboard workers, and two of them must never both pick up the jobs left pending.
    """

    def __init__(self, sessions: Callable[[], Session], transport: Transport, *, tz: tzinfo,
                 columns: int = 42, resume_pending: bool = True) -> None:  # fmt: skip
        self._sessions = sessions
        self.transport = transport
        self.columns = columns
        self.tz = tz
        self._resume_pending = resume_pending
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start printing; unless told otherwise, jobs left pending by a previous run go first."""
        if self._resume_pending:
            with self._sessions() as db:
                for job_id in db.scalars(
                    select(PrintJob.id).where(PrintJob.status == "pending").order_by(PrintJob.id)
                ):
                    self._queue.put(job_id)
        self._thread = threading.Thread(target=self._run, name="receipt-printer", daemon=True)
        self._thread.start()

    def submit(self, job_id: int) -> None:
        self._queue.put(job_id)

    def wait_idle(self, timeout: float) -> bool:
        """Whether every submitted job was handled within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._queue.all_tasks_done.wait(remaining):
                    return not self._queue.unfinished_tasks
        return True

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            job_id = self._queue.get()
            try:
                if job_id is None:
                    return
                self._print(job_id)
            finally:
                self._queue.task_done()

    def _print(self, job_id: int) -> None:
        # the one place that catches everything: a broken job must not stop the next ones
        try:
            with self._sessions() as db:
                job = db.get(PrintJob, job_id)
                if job is not None and job.status != "pending":
                    return  # printed meanwhile by another process: never twice
                run_job(db, job_id, self.transport, columns=self.columns, tz=self.tz)
        except (SQLAlchemyError, NotFound, EscposError, ValueError, KeyError) as err:
            log.error("print job %s could not run: %s", job_id, err)
