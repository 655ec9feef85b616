"""The documents' tables: receipts, invoices, credit notes, their chains, closures and print jobs.

    doc = db.scalars(select(Document).where(Document.series == "R", Document.number == 12)).one()
    doc.reference          # 'R-000012'
    doc.content            # canonical JSON, the hashed part (no personal data)

A document is written once and never edited: a correction is a credit note (``credit_note_of``).
Each ``Chain`` row is the head of one hash chain — a document series (gapless ``last_number``)
or a kind of closure — and is the row that is locked while the next link is added.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.models import Base, UTCDateTime, Visit, utcnow

DOCUMENT_KINDS = ("receipt", "invoice", "credit_note")
CLOSURE_KINDS = ("day", "month", "year")
PRINT_STATES = ("pending", "done", "failed")
GENESIS = "0" * 64

# series code -> document kind; the series rows are created by the migration
SERIES = {"R": "receipt", "F": "invoice", "A": "credit_note"}
CLOSURE_CHAINS = {"day": "Z-DAY", "month": "Z-MONTH", "year": "Z-YEAR"}


class Chain(Base):
    """The head of a hash chain: a document series (R, F, A) or closures (Z-DAY, Z-MONTH, Z-YEAR).

    ``last_number`` is the last number given (gapless), ``last_hash`` the hash of that link.
    """

    __tablename__ = "ledger_chains"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # DOCUMENT_KINDS | CLOSURE_KINDS
    last_number: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Document(Base):
    """A validated receipt, invoice or credit note; ``content`` is its canonical, hashed JSON.

    The columns beside ``content`` (total, payment method, visit…) repeat it for queries;
    ``verify`` checks that they agree with it.
    """

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("series", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series: Mapped[str] = mapped_column(ForeignKey("ledger_chains.code"))
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))  # DOCUMENT_KINDS
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), index=True)
    customer_ref: Mapped[str | None] = mapped_column(String(20))
    payment_method: Mapped[str] = mapped_column(String(20))
    total_cents: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    credit_note_of: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)
    issued_by: Mapped[str] = mapped_column(String(80))

    visit: Mapped[Visit | None] = relationship()
    original: Mapped[Document | None] = relationship(remote_side=[id])

    @property
    def reference(self) -> str:
        """The number people see: 'R-000012'."""
        return f"{self.series}-{self.number:06d}"


class Closure(Base):
    """A daily or monthly closure: totals per payment method and the perpetual grand total.

    ``content`` (hashed, chained per kind) holds the period's bounds in UTC, the totals, the
    number of documents and a digest of their hashes, so ``verify`` can recompute all of it.
    """

    __tablename__ = "closures"
    __table_args__ = (UniqueConstraint("kind", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # CLOSURE_KINDS
    period: Mapped[str] = mapped_column(String(10))  # 2026-11-26 | 2026-11
    number: Mapped[int] = mapped_column(Integer)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_by: Mapped[str] = mapped_column(String(80))
    total_cents: Mapped[int] = mapped_column(Integer)
    grand_total_cents: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class PrintJob(Base):
    """One printing of a document: ``copy`` 0 is the original, k ≥ 1 is 'DUPLICATA n° k'.

    The background printer sets ``status`` (pending, done, failed), counts ``attempts`` and
    keeps the last ``error`` so the desk can see why a receipt did not come out.
    """

    __tablename__ = "print_jobs"
    __table_args__ = (UniqueConstraint("document_id", "copy"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    copy: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)  # PRINT_STATES
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a printer process took it

    document: Mapped[Document] = relationship()


class InvoicePayment(Base):
    """The payment of an invoice issued unpaid ('à régler'), recorded later at the desk.

    ``paid_on`` is the day the money came (the transfer's or the cheque's date, as staff type
    it); the invoice itself is never changed. One payment settles what is left of the invoice.
    """

    __tablename__ = "invoice_payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), unique=True)
    method: Mapped[str] = mapped_column(String(20))  # PAYMENT_METHODS but free and due
    amount_cents: Mapped[int] = mapped_column(Integer)
    paid_on: Mapped[date] = mapped_column(Date, index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(80))

    document: Mapped[Document] = relationship()
