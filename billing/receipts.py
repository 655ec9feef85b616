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
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.config import OrganisationConfig
from billing.documents import SERIES, Document, PrintJob
from billing.errors import InvalidOperation, NotFound
from billing.invoice import InvoiceTerms, terms_for
from billing.ledger import advance, begin_locked, load, lock_chain, utc_text
from billing.models import CatalogueItem, ChargeLine, UsageSession, Visit, utcnow
from billing.money import HUNDRED, euros, round_cent
from billing.seals import seal
from billing.visits import close_visit

log = logging.getLogger(__name__)

RECEIPT, INVOICE, CREDIT_NOTE = "R", "F", "A"
COMPANY_CATEGORY = "company"


class Spooler(Protocol):
    """Where print jobs go once committed (``billing.printing.PrintSpooler``)."""

    def submit(self, job_id: int) -> None: ...


def close_with_receipt(
    db: Session,
    visit_id: int,
    payment_method: str,
    *,
    actor: str,
    organisation: OrganisationConfig,
    terms: InvoiceTerms | None = None,
    spooler: Spooler | None = None,
    now: datetime | None = None,
) -> Document:
    """Close the visit and issue its receipt (or a company's invoice) in one locked transaction.

    ``terms`` default to the organisation's settings (due days, late-payment rate, time zone).
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
    spooler: Spooler | None = None,
    now: datetime | None = None,
) -> Document:
    """A credit note cancelling the whole document ``document_id``; the original stays as it was."""
    reason = reason.strip()
    if not reason:
        raise InvalidOperation("a credit note needs a reason")
    return _in_transaction(
        db, spooler, lambda: _credit(db, document_id, reason, actor, now or utcnow())
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
    db: Session, visit_id: int, method: str, actor: str, org: OrganisationConfig, terms: InvoiceTerms,
    now: datetime,
) -> Document:  # fmt: skip
    visit = db.get(Visit, visit_id)
    if visit is None:
        raise NotFound(f"no visit {visit_id}")
    series = series_for(visit)
    chain = lock_chain(db, series)
    visit = _locked_visit(db, visit_id)  # fresh, after the lock: a second close sees it closed
    close_visit(db, visit_id, method, actor=actor, now=now)
    content = {
        **_header(series, chain.last_number + 1, now, visit, method),
        "seller": {"name": org.name, "address": org.address, "siret": org.siret},
        "lines": _lines(db, visit_id),
        "credit_note_of": None,
        "reason": None,
    }
    content["total_cents"] = sum(line["amount_cents"] for line in content["lines"])
    content["payments"] = {method: content["total_cents"]}
    content["tax"] = tax_block(content["total_cents"], org)
    if series == INVOICE:
        content["invoice"] = terms.mentions(visit.opened_at, now, now)
    return _write(db, chain, content, visit_id=visit.id, actor=actor, original=None, now=now)


def _credit(db: Session, document_id: int, reason: str, actor: str, now: datetime) -> Document:
    chain = lock_chain(db, CREDIT_NOTE)
    original = db.get(Document, document_id, populate_existing=True)
    if original is None:
        raise NotFound(f"no document {document_id}")
    if original.kind == "credit_note":
        raise InvalidOperation(
            f"{original.reference} is a credit note: it cannot be cancelled again"
        )
    taken = db.scalars(select(Document).where(Document.credit_note_of == original.id)).first()
    if taken is not None:
        raise InvalidOperation(f"{original.reference} is already cancelled by {taken.reference}")
    source = load(original.content)
    content = {
        **source,
        **_header(CREDIT_NOTE, chain.last_number + 1, now, None, original.payment_method),
        "visit": source["visit"], "customer_ref": source["customer_ref"], "category": source["category"],
        "lines": [_negated(line) for line in source["lines"]],
        "total_cents": -source["total_cents"],
        "payments": {original.payment_method: -source["total_cents"]},
        "tax": _negated_tax(source["tax"]),
        "credit_note_of": original.reference,
        "reason": reason,
    }  # fmt: skip
    content.pop("invoice", None)
    return _write(
        db, chain, content, visit_id=original.visit_id, actor=actor, original=original, now=now
    )


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
        db, actor, f"issue_{content['kind']}", document.reference, f"{content['total_cents']} cents"
    )
    log.info("issued %s (%s cents)", document.reference, content["total_cents"])
    return document


def series_for(visit: Visit) -> str:
    """A company (by category, or a customer with a SIREN) gets an invoice; everyone else a receipt."""
    company = visit.category.code == COMPANY_CATEGORY or bool(
        visit.customer and visit.customer.siren
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


def _negated(line: dict[str, Any]) -> dict[str, Any]:
    quantity = -Decimal(line["quantity"])
    return {**line, "quantity": str(quantity), "amount_cents": -line["amount_cents"]}


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


def _negated_tax(tax: dict[str, Any]) -> dict[str, Any]:
    negated = dict(tax)
    for key in ("net_cents", "vat_cents", "gross_cents"):
        if key in negated:
            negated[key] = -negated[key]
    return negated
