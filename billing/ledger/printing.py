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
Every text goes through ``printable`` on its way in (``billing.ledger.printable``).
"""

from __future__ import annotations

import logging
import queue
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

from escpos.exceptions import Error as EscposError
from escpos.printer import Dummy
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.config import PrinterConfig
from billing.errors import BillingError, NotFound
from billing.ledger.documents import Closure, Document, PrintJob
from billing.ledger.printable import CODE_PAGE, printable
from billing.models import utcnow
from billing.presentation import DocumentView, Row, customer_name

log = logging.getLogger(__name__)


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
    left, right = printable(left), printable(right)
    room = columns - len(right) - 1
    return f"{left[:room]:<{room}} {right}"


def _para(printer: Any, text: str, columns: int) -> None:
    """Free text (a name, an address, a mention) wrapped to the paper's width."""
    for part in textwrap.wrap(printable(text), columns) or [""]:
        printer.textln(part)


def _row(printer: Any, row: Row, columns: int) -> None:
    """The description, then quantity × price and the amount; a row without detail on one line."""
    if row.detail:
        _para(printer, row.description, columns)
        printer.textln(_pair("  " + row.detail, row.amount, columns))
        return
    parts = textwrap.wrap(printable(row.description), columns) or [""]
    for part in parts[:-1]:
        printer.textln(part)
    if len(parts[-1]) + len(printable(row.amount)) + 2 <= columns:
        printer.textln(_pair(parts[-1], row.amount, columns))
    else:
        printer.textln(parts[-1])
        printer.textln(_pair("", row.amount, columns))


def _rule(printer: Any, columns: int) -> None:
    printer.textln("-" * columns)


def render_receipt(view: DocumentView, *, columns: int = 42, copy: int = 0) -> bytes:
    """The ESC/POS bytes of a document on a receipt printer of ``columns`` (42 or 48)."""
    printer = Dummy()
    _init(printer)
    _heading(printer, view, copy, columns)
    _rule(printer, columns)
    for row in view.rows:
        _row(printer, row, columns)
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
    _para(printer, view.title, columns)
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
    _para(printer, view.reference, columns)
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
                "receipt printer at %(printer)s did not take the receipt (%(err)s) — "
                "is it switched on, plugged in, with paper?",
                printer=where(self.config), err=str(err),
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
        raise NotFound("no document %(document)s", document=document_id)
    last = db.scalar(select(func.max(PrintJob.copy)).where(PrintJob.document_id == document_id))
    job = PrintJob(document_id=document_id, copy=(last or 0) + 1, requested_by=actor)
    db.add(job)
    audit(db, actor, "reprint", document.reference, f"DUPLICATA n° {job.copy}")
    db.flush()
    return job


def claimable(db: Session, *, now: datetime, timeout_s: float) -> list[int]:
    """Jobs no printer holds: pending and never claimed, or claimed longer ago than ``timeout_s``."""
    query = select(PrintJob.id).where(_unclaimed(now, timeout_s)).order_by(PrintJob.id)
    return list(db.scalars(query))


def _unclaimed(now: datetime, timeout_s: float) -> ColumnElement[bool]:
    stale = now - timedelta(seconds=timeout_s)
    return and_(PrintJob.status == "pending",
                or_(PrintJob.claimed_at.is_(None), PrintJob.claimed_at < stale))  # fmt: skip


def claim(db: Session, job_id: int, *, now: datetime, timeout_s: float) -> bool:
    """Take a job for this process, committed; False when another printer process holds it or printed it.

    One UPDATE whose WHERE repeats the condition: of two processes racing for a job, the
    database lets exactly one change the row (PostgreSQL re-checks the WHERE after the lock).
    """
    taken = db.execute(
        update(PrintJob).where(PrintJob.id == job_id, _unclaimed(now, timeout_s)).values(claimed_at=now)
    )
    db.commit()
    return bool(getattr(taken, "rowcount", 0) == 1)


def run_job(
    db: Session, job_id: int, transport: Transport, *, columns: int, tz: tzinfo,
    now: datetime | None = None, claim_timeout_s: float = 120.0,
) -> PrintJob:  # fmt: skip
    """Claim one job, print it and record the outcome (done, or failed with the printer's error).

    A job another process holds (or already printed) is returned as it is, not printed.
    """
    job = db.get(PrintJob, job_id)
    if job is None:
        raise NotFound("no print job %(job)s", job=job_id)
    claimed = claim(db, job_id, now=now or utcnow(), timeout_s=claim_timeout_s)
    db.refresh(job)
    if not claimed:
        return job
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
    """A background thread that prints jobs one at a time, so the desk never waits.

    spooler = PrintSpooler(sessionmaker(engine), EscposTransport(cfg.printer), tz=org.zone)
    spooler.start(); spooler.submit(job.id); spooler.wait_idle(5); spooler.stop()

    Every dashboard worker (gunicorn runs several) may run one on the same database: a job is
    printed by the spooler that claims it (``claim``), at start and every ``scan_s`` each one
    looks for jobs nobody holds, and a claim older than ``claim_timeout_s`` (its spooler died
    mid-job) is taken again. A process killed between the printer taking the bytes and the
    commit that marks the job done is the one case left where a receipt comes out twice.
    """

    def __init__(self, sessions: Callable[[], Session], transport: Transport, *, tz: tzinfo,
                 columns: int = 42, claim_timeout_s: float = 120.0, scan_s: float = 30.0,
                 clock: Callable[[], datetime] = utcnow) -> None:  # fmt: skip
        self._sessions = sessions
        self.transport = transport
        self.columns = columns
        self.tz = tz
        self.claim_timeout_s = claim_timeout_s
        self.scan_s = scan_s
        self._clock = clock
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start printing; jobs left pending (or held by a spooler that died) go first."""
        self.scan()
        self._thread = threading.Thread(target=self._run, name="receipt-printer", daemon=True)
        self._thread.start()

    def scan(self) -> None:
        """Queue every job no spooler holds (claiming happens when each one is printed)."""
        try:
            with self._sessions() as db:
                found = claimable(db, now=self._clock(), timeout_s=self.claim_timeout_s)
        except SQLAlchemyError as err:  # the database is away: the next scan tries again
            log.error("looking for print jobs: %s", err)
            return
        for job_id in found:
            self._queue.put(job_id)

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
        next_scan = time.monotonic() + self.scan_s
        while True:
            try:
                job_id = self._queue.get(timeout=max(next_scan - time.monotonic(), 0.0))
            except queue.Empty:  # a scan every scan_s, however busy the queue is
                next_scan = time.monotonic() + self.scan_s
                self.scan()
                continue
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
                run_job(db, job_id, self.transport, columns=self.columns, tz=self.tz,
                        now=self._clock(), claim_timeout_s=self.claim_timeout_s)  # fmt: skip
        except (SQLAlchemyError, NotFound, EscposError, ValueError, KeyError) as err:
            log.error("print job %s could not run: %s", job_id, err)
