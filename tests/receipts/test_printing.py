"""The receipt printer: the bytes python-escpos's Dummy printer gets, and a printer that is away."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from billing.config import PrinterConfig
from billing.customers import erase_customer
from billing.ledger.chain import verify
from billing.ledger.documents import Document, PrintJob
from billing.ledger.printing import EscposTransport, PrintSpooler, render_receipt, reprint, run_job
from billing.ledger.receipts import close_with_receipt
from billing.models import Customer, Visit
from billing.presentation import DocumentView, customer_name
from tests.receipts.conftest import ORG, walk_in

INIT, CP858 = b"\x1b@", b"\x1bt\x13"
FONT_B, FONT_A = b"\x1bM\x01", b"\x1bM\x00"


def _receipt(db: Session, name: str | None = None) -> Document:
    visit = walk_in(db, ("plywood-3mm", "2"), ("mdf-3mm", "0.5"), name=name)
    return close_with_receipt(db, visit, "card", actor="alice", organisation=ORG)


def _bytes(db: Session, doc: Document, columns: int = 42, copy: int = 0) -> bytes:
    view = DocumentView.of(doc, customer=customer_name(doc.visit), tz=ORG.zone)
    return render_receipt(view, columns=columns, copy=copy)


def test_receipt_bytes_select_cp858_after_init_and_each_font_change(db: Session) -> None:
    data = _bytes(db, _receipt(db))
    assert data.startswith(INIT + CP858)
    assert FONT_B + CP858 in data and FONT_A + CP858 in data
    assert b"Contreplaqu\x82 peuplier 3 mm 600\x9e300" in data  # é and × in CP858
    assert b"TOTAL" in data and b"10,50 \xd5" in data  # € is 0xD5 in CP858
    assert "€".encode() not in data
    assert b"TVA non applicable, art. 293 B du CGI" in data
    assert b"Pay\x82 par carte bancaire : 10,50 \xd5" in data
    assert b"SIRET 123 456 789 00012" in data and b"TICKET R-000001" in data
    assert data.endswith(b"\x1dV\x00")  # full cut


def test_receipt_carries_a_qr_code_with_number_and_hash(db: Session) -> None:
    doc = _receipt(db)
    data = _bytes(db, doc)
    payload = f"R-000001 {doc.hash}".encode()
    assert b"\x1d(k" in data
    assert (b"\x1d(k" + (len(payload) + 3).to_bytes(2, "little") + b"1P0" + payload) in data


def _printed_lines(data: bytes) -> list[bytes]:
    """The text lines of a receipt, without ESC/POS commands and the QR code's data."""
    body = data.split(b"\x1dV")[0]
    body = body[: body.index(b"\x1d(k")] + body[body.rindex(b"\x1d(k") + 8 :]
    return re.sub(rb"\x1b@|\x1b[tMEad!].|\x1d!.", b"", body, flags=re.S).split(b"\n")


@pytest.mark.parametrize("columns", [42, 48])
def test_no_printed_line_is_wider_than_the_paper(db: Session, columns: int) -> None:
    name = "Dominique-Alexandre de la Fontaine-Saint-Maurice du Grand Village"
    lines = _printed_lines(_bytes(db, _receipt(db, name=name), columns))
    assert b"-" * columns in lines
    assert any(line.startswith(b"Client : Dominique-Alexandre") for line in lines)
    assert [line for line in lines if len(line) > columns] == []


def test_the_customer_is_named_unless_anonymous(db: Session) -> None:
    named = _bytes(db, _receipt(db, name="Camille Durand"))
    anonymous = _bytes(db, _receipt(db))
    assert b"Client : Camille Durand" in named
    assert b"Client :" not in anonymous


def test_a_duplicate_says_so(db: Session) -> None:
    doc = _receipt(db)
    assert b"DUPLICATA" not in _bytes(db, doc)
    assert b"DUPLICATA n\xf8 2" in _bytes(db, doc, copy=2)


def test_closing_prints_in_the_background_on_the_dummy_printer(
    sessions: sessionmaker[Session],
) -> None:
    transport = EscposTransport(PrinterConfig(kind="dummy"))
    spooler = PrintSpooler(sessions, transport, columns=48, tz=ORG.zone)
    spooler.start()
    try:
        with sessions() as db:
            doc = _receipt_with(db, spooler)
        assert spooler.wait_idle(10)
    finally:
        spooler.stop()
    assert transport.dummy is not None and f"R-000001 {doc.hash}".encode() in transport.dummy.output
    with sessions() as db:
        job = db.query(PrintJob).one()
        assert (job.status, job.attempts, job.copy, job.error) == ("done", 1, 0, None)


def _receipt_with(db: Session, spooler: PrintSpooler) -> Document:
    visit = walk_in(db, ("plywood-3mm", "1"))
    return close_with_receipt(db, visit, "cash", actor="alice", organisation=ORG, spooler=spooler)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class FakeNetworkPrinter:
    """A TCP server on loopback that keeps whatever a receipt printer would receive on port 9100."""

    def __init__(self, port: int) -> None:
        self.received = b""
        self._server = socket.create_server(("127.0.0.1", port))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._server.accept()
        with conn:
            while chunk := conn.recv(65536):
                self.received += chunk

    def close(self) -> bytes:
        self._thread.join(10)
        self._server.close()
        return self.received


@pytest.fixture
def unplugged(sessions: sessionmaker[Session]) -> Iterator[tuple[PrintSpooler, int]]:
    port = _closed_port()
    config = PrinterConfig(kind="network", host="127.0.0.1", port=port, timeout_s=2.0)
    spooler = PrintSpooler(sessions, EscposTransport(config), tz=ORG.zone)
    spooler.start()
    yield spooler, port
    spooler.stop()


def test_an_unplugged_printer_never_blocks_closing_and_a_reprint_comes_out_later(
    sessions: sessionmaker[Session], unplugged: tuple[PrintSpooler, int]
) -> None:
    spooler, port = unplugged
    with sessions() as db:
        doc = _receipt_with(db, spooler)
        visit = db.get(Visit, doc.visit_id)
        assert doc.reference == "R-000001" and visit is not None and visit.state == "closed"
    assert spooler.wait_idle(10)
    with sessions() as db:
        job = db.query(PrintJob).one()
        assert (job.status, job.attempts) == ("failed", 1)
        assert (
            job.error is not None
            and f"127.0.0.1:{port}" in job.error
            and "switched on" in job.error
        )
    printer = FakeNetworkPrinter(port)  # the printer is plugged back in
    with sessions() as db:
        again = reprint(db, doc.id, actor="bob")
        db.commit()
        spooler.submit(again.id)
    assert spooler.wait_idle(10)
    received = printer.close()
    assert (
        b"DUPLICATA n\xf8 1" in received
        and b"R-000001" in received
        and received.endswith(b"\x1dV\x00")
    )
    with sessions() as db:
        assert db.get(PrintJob, again.id).status == "done"  # type: ignore[union-attr]


def test_a_serial_printer_that_is_not_there_records_its_path(db: Session, tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyUSB9")
    doc = _receipt(db)
    job = reprint(db, doc.id, actor="alice")
    db.commit()
    done = run_job(
        db, job.id, EscposTransport(PrinterConfig(kind="serial", device=missing)), columns=42, tz=ORG.zone
    )
    assert done.status == "failed" and done.error is not None and missing in done.error


def test_a_file_printer_gets_the_receipt_bytes(db: Session, tmp_path: Path) -> None:
    out = tmp_path / "receipt.bin"
    doc = _receipt(db)
    job = reprint(db, doc.id, actor="alice")
    db.commit()
    run_job(db, job.id, EscposTransport(PrinterConfig(kind="file", path=out)), columns=42, tz=ORG.zone)
    assert out.read_bytes() == _bytes(db, doc, copy=1)


def test_an_erased_customer_is_no_longer_printed(db: Session) -> None:
    visit_id = walk_in(db, ("mdf-3mm", "1"), name="Camille Durand")
    customer = Customer(ref="C0100", name="Camille Durand")
    db.add(customer)
    visit = db.get(Visit, visit_id)
    assert visit is not None
    visit.customer = customer
    db.commit()
    doc = close_with_receipt(db, visit_id, "cash", actor="alice", organisation=ORG)
    assert b"Client : Camille Durand" in _bytes(db, doc)
    erase_customer(db, "C0100", actor="alice")
    db.commit()
    assert b"Camille" not in _bytes(db, doc)
    assert verify(db) is None  # the chain never held the name


def test_jobs_left_pending_are_printed_when_the_spooler_starts(sessions: sessionmaker[Session]) -> None:
    with sessions() as db:
        doc = _receipt(db)
        reprint(db, doc.id, actor="alice")
        db.commit()
    transport = EscposTransport(PrinterConfig(kind="dummy"))
    spooler = PrintSpooler(sessions, transport, tz=ORG.zone)
    spooler.start()
    try:
        assert spooler.wait_idle(10)
    finally:
        spooler.stop()
    assert transport.dummy is not None and b"DUPLICATA n\xf8 1" in transport.dummy.output
    with sessions() as db:
        assert [job.status for job in db.query(PrintJob)] == ["done"]
