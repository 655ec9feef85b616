"""The print spooler with several dashboard workers: each job printed once, none left behind.

Two spoolers share one database as two gunicorn workers do; a third runs in a child process
that is killed (SIGKILL) while its printer — a FIFO nobody reads, so ``open()`` blocks as a
printer that does not answer would — holds the job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from billing.ledger.documents import PrintJob
from billing.ledger.printing import PrintSpooler, claim, reprint, run_job
from billing.ledger.receipts import close_with_receipt
from billing.models import utcnow
from tests.receipts.conftest import ORG, walk_in

ROOT = Path(__file__).resolve().parents[2]


class CountingPrinter:
    """A transport that keeps each receipt's number and copy, slowly enough for two spoolers to race."""

    def __init__(self) -> None:
        self.printed: list[bytes] = []
        self._lock = threading.Lock()

    def send(self, data: bytes) -> None:
        time.sleep(0.01)
        with self._lock:
            self.printed.append(data)


def _pending_jobs(sessions: sessionmaker[Session], count: int) -> list[int]:
    """``count`` receipts, each with a duplicate waiting to be printed."""
    ids = []
    with sessions() as db:
        for _ in range(count):
            doc = close_with_receipt(db, walk_in(db, ("plywood-3mm", "1")), "card", actor="alice",
                                     organisation=ORG)  # fmt: skip
            ids.append(reprint(db, doc.id, actor="alice").id)
            db.commit()
    return ids


def _references(printers: list[CountingPrinter]) -> Counter[bytes]:
    return Counter(data.split(b"TICKET ")[1][:8] for p in printers for data in p.printed)


def test_two_spoolers_on_one_database_print_each_job_exactly_once(any_engine: Engine) -> None:
    sessions = sessionmaker(any_engine, expire_on_commit=False)
    _pending_jobs(sessions, 12)
    printers = [CountingPrinter(), CountingPrinter()]
    spoolers = [PrintSpooler(sessions, p, tz=ORG.zone) for p in printers]
    for spooler in spoolers:
        spooler.start()  # both find all twelve jobs pending at start
    try:
        assert all(spooler.wait_idle(60) for spooler in spoolers)
    finally:
        for spooler in spoolers:
            spooler.stop()
    counts = _references(printers)
    assert sorted(counts) == [f"R-{n:06d}".encode() for n in range(1, 13)]
    assert set(counts.values()) == {1}
    with sessions() as db:
        assert {(job.status, job.attempts) for job in db.query(PrintJob)} == {("done", 1)}


def test_a_job_claimed_by_a_live_spooler_is_not_taken(sessions: sessionmaker[Session]) -> None:
    [job_id] = _pending_jobs(sessions, 1)
    now = datetime(2026, 11, 26, 14, 0, tzinfo=utcnow().tzinfo)
    with sessions() as db:
        assert claim(db, job_id, now=now, timeout_s=120)
        assert not claim(db, job_id, now=now + timedelta(seconds=119), timeout_s=120)
        held = run_job(db, job_id, CountingPrinter(), columns=42, tz=ORG.zone, now=now + timedelta(seconds=60))
        assert (held.status, held.attempts) == ("pending", 0)  # `ledger reprint` says the dashboard prints it
        assert claim(db, job_id, now=now + timedelta(seconds=121), timeout_s=120)  # its spooler died
        printer = CountingPrinter()
        run_job(db, job_id, printer, columns=42, tz=ORG.zone, now=now + timedelta(seconds=500))
        assert printer.printed  # still claimable: 500 s after the last claim
        again = run_job(db, job_id, printer, columns=42, tz=ORG.zone, now=now + timedelta(seconds=999))
        assert (again.status, len(printer.printed)) == ("done", 1)


CHILD = """
import sys, time
from sqlalchemy.orm import sessionmaker
from billing.config import PrinterConfig
from billing.database import make_engine
from billing.ledger.printing import EscposTransport, PrintSpooler
from zoneinfo import ZoneInfo
url, fifo = sys.argv[1], sys.argv[2]
transport = EscposTransport(PrinterConfig(kind="file", path=fifo))
PrintSpooler(sessionmaker(make_engine(url)), transport, tz=ZoneInfo("Europe/Paris")).start()
time.sleep(600)
"""


def _claimed(sessions: sessionmaker[Session], job_id: int, child: subprocess.Popen[bytes]) -> datetime | None:
    end = time.monotonic() + 30
    while time.monotonic() < end and child.poll() is None:
        with sessions() as db:
            job = db.get(PrintJob, job_id)
            if job is not None and job.claimed_at is not None:
                return job.claimed_at
        time.sleep(0.05)
    return None


def test_a_spooler_killed_mid_job_leaves_it_to_another_which_prints_it_once(
    sessions: sessionmaker[Session], sqlite_engine: Engine, tmp_path: Path
) -> None:
    [job_id] = _pending_jobs(sessions, 1)
    fifo = tmp_path / "printer"
    os.mkfifo(fifo)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(sqlite_engine.url), str(fifo)], cwd=ROOT)
    try:
        claimed_at = _claimed(sessions, job_id, child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert claimed_at is not None, "the child spooler never claimed the job"
    with sessions() as db:
        job = db.get(PrintJob, job_id)
        assert job is not None and (job.status, job.printed_at) == ("pending", None)

    def survivor(after_s: int, printer: CountingPrinter) -> None:
        spooler = PrintSpooler(sessions, printer, tz=ORG.zone,
                               clock=lambda: claimed_at + timedelta(seconds=after_s))  # fmt: skip
        spooler.start()
        try:
            assert spooler.wait_idle(30)
        finally:
            spooler.stop()

    early, late, later = CountingPrinter(), CountingPrinter(), CountingPrinter()
    survivor(60, early)  # the claim may still be a live spooler waiting for its printer
    survivor(121, late)  # past claim_timeout_s: taken again
    survivor(900, later)
    assert (len(early.printed), len(late.printed), len(later.printed)) == (0, 1, 0)
    with sessions() as db:
        job = db.get(PrintJob, job_id)
        assert job is not None and job.status == "done"
