"""Closing a visit with its numbered document, and credit notes.

    doc = close_with_receipt(db, visit_id, "card", actor="alice", organisation=config.organisation)
    doc.reference                           # 'R-000042' (a company's visit: 'F-000007')
    issue_credit_note(db, doc.id, "erreur de tarif", actor="alice", organisation=config.organisation)

Each function owns its transaction: it takes the chain's lock, writes the document and its
first print job, and commits; the background printer is told only after the commit, so a
printer that is off never holds a number or a visit back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.config import OrganisationConfig
from billing.customers import invoice_buyer
from billing.errors import InvalidOperation, NotFound
from billing.ledger.chain import advance, begin_locked, load, lock_chain, utc_text
from billing.ledger.documents import SERIES, Document, InvoicePayment, PrintJob
from billing.ledger.invoice import InvoiceTerms, terms_for
from billing.ledger.seals import seal
from billing.models import CatalogueItem, ChargeLine, UsageSession, Visit, utcnow
from billing.money import HUNDRED, euros, format_eur, round_cent, to_cents
from billing.payments import DUE, Payment, method_label, payments_for
from billing.visits import COMPANY, close_visit

log = logging.getLogger(__name__)

RECEIPT, INVOICE, CREDIT_NOTE = "R", "F", "A"


class Spooler(Protocol):
    """Where print jobs go once committed (``billing.ledger.printing.PrintSpooler``)."""

    def submit(self, job_id: int) -> None: ...


def close_with_receipt(
    db: Session,
    visit_id: int,
    payment_method: Payment,
    *,
    actor: str,
    organisation: OrganisationConfig,
    terms: InvoiceTerms | None = None,
    spooler: Spooler | None = None,
    now: datetime | None = None,
) -> Document:
    """Close the visit and issue its receipt (or a company's invoice) in one locked transaction.

    ``payment_method`` is one method ("card") or a split ({"card": Decimal("10"), "cash":
    Decimal("2.40")}) that adds up to the total (``billing.payments``). ``terms`` default to the
    organisation's settings (due days, late-payment rate, time zone).
    """
    terms = terms or terms_for(organisation)
    return _in_transaction(db, spooler, lambda: _close(db, visit_id, payment_method, actor,
                                                       organisation, terms, now or utcnow()))  # fmt: skip


def issue_credit_note(
    db: Session,
    document_id: int,
    reason: str,
    *,
    actor: str,
    lines: Mapping[int, Decimal] | None = None,
    method: str | None = None,
    spooler: Spooler | None = None,
    now: datetime | None = None,
) -> Document:
    """A credit note on document ``document_id``; the original stays as it was.

    Whole (``lines`` None: what is left of it), or for chosen lines and quantities: ``lines``
    maps a line's position on the original (0, 1, …) to the quantity taken back, e.g. one plate
    of three, ``{1: Decimal("1")}``. Several partial notes may follow one another; together they
    never take back more than a line's quantity, nor more than the document's total. The money
    goes back by ``method`` (default: how the document was paid).
    """
    reason = reason.strip()
    if not reason:
        raise InvalidOperation("a credit note needs a reason")
    return _in_transaction(
        db, spooler, lambda: _credit(db, document_id, reason, actor, lines, method, now or utcnow())
    )


def _in_transaction(db: Session, spooler: Spooler | None, work: Callable[[], Document]) -> Document:
    begin_locked(db)
    try:
        document = work()
        job = (
            PrintJob(document=document, copy=0, requested_by=document.issued_by)
            if spooler
            else None
        )
        if job is not None:
            db.add(job)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    if spooler is not None and job is not None:
        spooler.submit(job.id)
    return document


def _close(
    db: Session, visit_id: int, payment: Payment, actor: str, org: OrganisationConfig, terms: InvoiceTerms,
    now: datetime,
) -> Document:  # fmt: skip
    visit = db.get(Visit, visit_id)
    if visit is None:
        raise NotFound("no visit %(visit)s", visit=visit_id)
    series = series_for(visit)
    chain = lock_chain(db, series)
    visit = _locked_visit(db, visit_id)  # fresh, after the lock: a second close sees it closed
    lines = _lines(db, visit_id)
    payments = payments_for(sum(line["amount_cents"] for line in lines), payment)
    if DUE in payments and series != INVOICE:
        raise InvalidOperation(
            "visit %(visit)s gets a receipt: it is paid now; only a company's invoice can be left to pay", visit=visit_id
        )
    buyer = invoice_buyer(visit.customer, visit_id) if series == INVOICE else None
    close_visit(db, visit_id, next(iter(payments)), actor=actor, now=now)
    visit.payment_method = method_label(payments)
    content = {
        **_header(series, chain.last_number + 1, now, visit, visit.payment_method),
        "seller": {"name": org.name, "address": org.address, "siret": org.siret},
        "lines": lines,
        "credit_note_of": None,
        "reason": None,
    }
    content["total_cents"] = sum(line["amount_cents"] for line in content["lines"])
    content["payments"] = payments
    content["tax"] = tax_block(content["total_cents"], org)
    if series == INVOICE:
        content["buyer"] = buyer  # frozen: editing the customer later changes no issued invoice
        content["invoice"] = terms.mentions(visit.opened_at, now, now, due=DUE in payments)
    return _write(db, chain, content, visit_id=visit.id, actor=actor, original=None, now=now)


def _credit(
    db: Session, document_id: int, reason: str, actor: str, chosen: Mapping[int, Decimal] | None,
    method: str | None, now: datetime,
) -> Document:  # fmt: skip
    chain = lock_chain(db, CREDIT_NOTE)
    original = db.get(Document, document_id, populate_existing=True)
    if original is None:
        raise NotFound("no document %(document)s", document=document_id)
    if original.kind == "credit_note":
        raise InvalidOperation("%(reference)s is a credit note: it cannot be cancelled again", reference=original.reference)
    source = load(original.content)
    left = creditable(db, original)
    lines = _credited_lines(source["lines"], left, chosen, original.reference)
    total = sum(line["amount_cents"] for line in lines)
    already = sum(int(load(note.content)["total_cents"]) for note in credit_notes_of(db, original.id))
    if total >= 0 or source["total_cents"] + already + total < 0:
        raise InvalidOperation(
            "this credit note would give back %(amount)s, but %(left)s of %(reference)s is left to give back",
            amount=format_eur(euros(-total)), left=format_eur(euros(source["total_cents"] + already)),
            reference=original.reference,
        )  # fmt: skip
    refund = method or next(iter(source["payments"]))
    if original.payment_method == DUE:
        paid = db.scalar(select(InvoicePayment).where(InvoicePayment.document_id == original.id))
        # unpaid: the credit note lowers what is due; paid later: the money goes back as it came
        refund = DUE if paid is None else (method or paid.method)
    content = {
        **source,
        **_header(CREDIT_NOTE, chain.last_number + 1, now, None, refund),
        "visit": source["visit"], "customer_ref": source["customer_ref"], "category": source["category"],
        "lines": lines, "total_cents": total, "payments": {refund: total},
        "tax": _tax_like(source["tax"], total), "credit_note_of": original.reference, "reason": reason,
    }  # fmt: skip
    content.pop("invoice", None)
    return _write(db, chain, content, visit_id=original.visit_id, actor=actor, original=original, now=now)


def credit_notes_of(db: Session, document_id: int) -> list[Document]:
    query = select(Document).where(Document.credit_note_of == document_id).order_by(Document.id)
    return list(db.scalars(query))


def creditable(db: Session, original: Document) -> list[tuple[Decimal, int]]:
    """Per line of ``original``: the quantity and the cents its credit notes have not taken back."""
    source = load(original.content)
    left = [(Decimal(line["quantity"]), int(line["amount_cents"])) for line in source["lines"]]
    for note in credit_notes_of(db, original.id):
        for line in load(note.content)["lines"]:
            quantity, cents = left[line["of_line"]]  # a credited line is negative
            left[line["of_line"]] = (quantity + Decimal(line["quantity"]), cents + line["amount_cents"])
    return left


def _credited_lines(
    source: list[dict[str, Any]], left: list[tuple[Decimal, int]], chosen: Mapping[int, Decimal] | None,
    reference: str,
) -> list[dict[str, Any]]:  # fmt: skip
    wanted = dict(chosen) if chosen is not None else {i: q for i, (q, _) in enumerate(left) if q > 0}
    if not wanted:
        raise InvalidOperation("nothing of %(reference)s is left to give back", reference=reference)
    lines = []
    for index, quantity in sorted(wanted.items()):
        if not 0 <= index < len(source):
            raise InvalidOperation("%(reference)s has no line %(line)s", reference=reference, line=index + 1)
        most = left[index][0]
        if quantity <= 0 or quantity > most or quantity != quantity.quantize(Decimal("0.001")):
            raise InvalidOperation(
                "line %(line)s of %(reference)s: between 0 and %(most)s can be given back (at most 3 decimals), "
                "not %(quantity)s", line=index + 1, reference=reference, most=format(most.normalize(), "f"),
                quantity=format(quantity.normalize(), "f"),
            )
        lines.append(_negated(source[index], index, quantity, left[index]))
    return lines


def _negated(line: dict[str, Any], index: int, quantity: Decimal, left: tuple[Decimal, int]) -> dict[str, Any]:
    """The line taken back for ``quantity``; the last of a line takes back exactly its last cents."""
    most, cents_left = left
    cents = cents_left if quantity == most else to_cents(Decimal(line["unit_price"]) * quantity)
    return {**line, "quantity": str(-quantity), "amount_cents": -cents, "of_line": index}


def _write(
    db: Session, chain: Any, content: dict[str, Any], *, visit_id: int | None, actor: str,
    original: Document | None, now: datetime,
) -> Document:  # fmt: skip
    content["issued_by"] = actor  # hashed too: the column beside it is checked against it
    text, prev, digest = advance(chain, content, now)
    document = Document(
        series=content["series"], number=content["number"], kind=content["kind"],
        issued_at=now.replace(microsecond=0), visit_id=visit_id, customer_ref=content["customer_ref"],
        payment_method=next(iter(content["payments"])), total_cents=content["total_cents"], content=text,
        prev_hash=prev, hash=digest, credit_note_of=original.id if original else None, issued_by=actor,
    )  # fmt: skip
    db.add(document)
    db.flush()
    seal(db, document.series, document.number, digest)
    audit(
        db, actor, f"issue_{content['kind']}", document.reference, f"{content['total_cents']} cents",
        now=now,
    )
    log.info("issued %s (%s cents)", document.reference, content["total_cents"])
    return document


def series_for(visit: Visit) -> str:
    """A company (by category, or a company customer) gets an invoice; everyone else a receipt."""
    company = visit.category.code == COMPANY or bool(
        visit.customer and visit.customer.kind == "company"
    )
    return INVOICE if company else RECEIPT


def _locked_visit(db: Session, visit_id: int) -> Visit:
    query = select(Visit).where(Visit.id == visit_id).with_for_update()
    visit = db.scalars(query.execution_options(populate_existing=True)).one()
    return visit


def _header(
    series: str, number: int, now: datetime, visit: Visit | None, method: str
) -> dict[str, Any]:
    header: dict[str, Any] = {
        "v": 1, "series": series, "number": number, "kind": SERIES[series],
        "reference": f"{series}-{number:06d}", "issued_at": utc_text(now),
    }  # fmt: skip
    if visit is not None:
        header["visit"] = visit.id
        header["customer_ref"] = visit.customer.ref if visit.customer else None
        header["category"] = visit.category.code
    return header


def _lines(db: Session, visit_id: int) -> list[dict[str, Any]]:
    """The visit's lines as hashed: what was sold, to which machine or item, never to whom."""
    query = (
        select(ChargeLine, UsageSession.machine_id, CatalogueItem.code)
        .outerjoin(UsageSession, ChargeLine.session_id == UsageSession.id)
        .outerjoin(CatalogueItem, ChargeLine.catalogue_item_id == CatalogueItem.id)
        .where(ChargeLine.visit_id == visit_id)
        .order_by(ChargeLine.id)
    )
    return [
        {
            "kind": line.kind,
            "description": line.description,
            "quantity": str(line.quantity),
            "unit": line.unit,
            "unit_price": str(line.unit_price),
            "amount_cents": line.amount_cents,
            "machine": machine,
            "item": item,
        }  # fmt: skip
        for line, machine, item in db.execute(query)
    ]


def tax_block(total_cents: int, org: OrganisationConfig) -> dict[str, Any]:
    """The regime mention, or VAT included in the total split into HT and TVA."""
    if org.tax_regime != "vat":
        return {"regime": org.tax_regime, "mention": org.legal_mention}
    gross = euros(total_cents)
    net = round_cent(gross / (1 + org.vat_rate / HUNDRED))
    net_cents = int(net * HUNDRED)
    return {
        "regime": "vat", "rate": str(org.vat_rate), "mention": org.legal_mention,
        "net_cents": net_cents, "vat_cents": total_cents - net_cents, "gross_cents": total_cents,
    }  # fmt: skip


def _tax_like(tax: dict[str, Any], total_cents: int) -> dict[str, Any]:
    """The original's tax block, recomputed for a credit note's (negative) total."""
    if tax["regime"] != "vat":
        return dict(tax)
    net_cents = to_cents(euros(total_cents) / (1 + Decimal(tax["rate"]) / HUNDRED))
    return {**tax, "net_cents": net_cents, "vat_cents": total_cents - net_cents, "gross_cents": total_cents}
