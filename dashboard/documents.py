"""Every document seen again: the list, a page per document, its PDF and A4 copies, e-mail.

    /documents/?date=2026-11-26&number=R-000012      newest first
    /documents/12                                    the receipt as printed, its prints, send it
    /documents/12/receipt.pdf | invoice.pdf | invoice.html

A receipt's page shows the text ``render_receipt`` gives the printer (the same bytes, read
back by ``printed_text``); an invoice or a credit note also has its A4 PDF and HTML. Sending
is audited, success or failure; a mail server that is away is a message on the page.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import Select, select

from billing.audit import audit
from billing.ledger.chain import load
from billing.ledger.copies import printed_text, receipt_pdf
from billing.ledger.documents import Document, PrintJob
from billing.ledger.invoice import buyer_of, invoice_html, invoice_pdf
from billing.ledger.mailing import MailError, document_message, send
from billing.ledger.printing import render_receipt
from billing.presentation import DocumentView, customer_name
from dashboard.formats import local_zone
from dashboard.forms import SendDocumentForm
from dashboard.store import ledger

log = logging.getLogger(__name__)
bp = Blueprint("documents", __name__, url_prefix="/documents")
A4_KINDS = ("invoice", "credit_note")
LISTED = 200


def _document(document_id: int) -> Document:
    found = ledger().get(Document, document_id)
    if found is None:
        abort(404)
    return found


def _view(document: Document) -> DocumentView:
    return DocumentView.of(document, customer=customer_name(document.visit), tz=local_zone())


def receipt_text(document: Document) -> str:
    """What the receipt printer printed for this document (its original, not a duplicate)."""
    columns = current_app.config["FABMETER"].printer.columns
    return printed_text(render_receipt(_view(document), columns=columns))


def _filtered(query: Select[Any], day: str, number: str) -> Select[Any]:
    """Documents of one local day ('2026-11-26') and/or of a number ('R-000012', 'R-12', '12')."""
    if day:
        try:
            start = datetime.combine(date.fromisoformat(day), time(), local_zone())
        except ValueError:
            flash(_("“%(day)s” is not a date (2026-11-26).", day=day[:20]), "error")
        else:
            query = query.where(Document.issued_at >= start, Document.issued_at < start + timedelta(days=1))
    series, _dash, digits = number.strip().upper().rpartition("-")
    if number.strip():
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 9):  # '²' and 10^20 too
            flash(_("“%(number)s” is not a document number (R-000012).", number=number[:20]), "error")
            return query.where(Document.id.is_(None))
        query = query.where(Document.number == int(digits))
        if series:
            query = query.where(Document.series == series)
    return query


@bp.route("/")
def index() -> ResponseReturnValue:
    day, number = request.args.get("date", ""), request.args.get("number", "")
    query = _filtered(select(Document), day, number).order_by(Document.issued_at.desc(), Document.id.desc())
    rows: list[Document] = list(ledger().scalars(query.limit(LISTED)))
    return render_template("documents/index.html", rows=rows, day=day, number=number, listed=LISTED,
                           methods={d.id: methods(d) for d in rows})  # fmt: skip


def methods(document: Document) -> list[str]:
    """How it was paid or refunded, each method of a split payment ('card', 'cash')."""
    return list(load(document.content)["payments"])


@bp.route("/<int:document_id>")
def page(document_id: int) -> ResponseReturnValue:
    document = _document(document_id)
    form = SendDocumentForm()
    if not form.is_submitted() and document.visit is not None and document.visit.customer is not None:
        form.to.data = document.visit.customer.email or ""
    jobs = ledger().scalars(select(PrintJob).where(PrintJob.document_id == document.id).order_by(PrintJob.id))
    notes = ledger().scalars(select(Document).where(Document.credit_note_of == document.id).order_by(Document.id))
    return render_template("documents/page.html", document=document, text=receipt_text(document),
                           jobs=list(jobs), notes=list(notes), form=form, a4=document.kind in A4_KINDS,
                           methods=methods(document),
                           can_send=current_app.config["FABMETER"].smtp.host is not None)  # fmt: skip


def _pdf(data: bytes, name: str) -> Response:
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})  # fmt: skip


@bp.route("/<int:document_id>/receipt.pdf")
def receipt_copy(document_id: int) -> ResponseReturnValue:
    document = _document(document_id)
    return _pdf(receipt_pdf(receipt_text(document), title=document.reference), f"{document.reference}.pdf")


@bp.route("/<int:document_id>/invoice.pdf")
def invoice_copy(document_id: int) -> ResponseReturnValue:
    document = _document(document_id)
    if document.kind not in A4_KINDS:
        abort(404)
    return _pdf(invoice_pdf(document, buyer_of(document), tz=local_zone()), f"{document.reference}.pdf")


@bp.route("/<int:document_id>/invoice.html")
def invoice_page(document_id: int) -> ResponseReturnValue:
    document = _document(document_id)
    if document.kind not in A4_KINDS:
        abort(404)
    return invoice_html(document, buyer_of(document), tz=local_zone())


def _masked(address: str) -> str:
    """'c…@example.org': enough to tell sends apart in the audit log, not a person's address."""
    local, _at, domain = address.rpartition("@")
    return f"{local[:1]}…@{domain}"


def _message(document: Document, to: str) -> Any:
    """The e-mail in French (the document's language), whatever language the desk uses."""
    view = _view(document)
    seller = view.seller["name"]
    with force_locale("fr"):
        subject = _("%(title)s — %(seller)s", title=view.title, seller=seller)
        if document.kind in A4_KINDS:
            body = _("Hello,\n\nPlease find %(title)s attached.\n\n%(seller)s", title=view.title, seller=seller)
            attachment = invoice_pdf(document, buyer_of(document), tz=local_zone())
        else:
            body = _("Hello,\n\nHere is your receipt.\n\n%(seller)s", seller=seller) + "\n\n" + receipt_text(document)
            attachment = receipt_pdf(receipt_text(document), title=view.title)
    smtp = current_app.config["FABMETER"].smtp
    return document_message(smtp, to=to, subject=subject, body=body,
                            attachments=[(f"{document.reference}.pdf", attachment)])  # fmt: skip


@bp.route("/<int:document_id>/send", methods=["POST"])
def send_copy(document_id: int) -> ResponseReturnValue:
    document = _document(document_id)
    form = SendDocumentForm()
    back = redirect(url_for("documents.page", document_id=document.id))
    if not form.validate_on_submit():
        flash(_("Type the e-mail address to send the document to."), "error")
        return back
    db, actor = ledger(), str(current_user.username)
    try:
        message = _message(document, form.to.data or "")
        send(current_app.config["FABMETER"].smtp, message)
    except MailError as err:
        audit(db, actor, "send_document_failed", document.reference, str(err)[:500])
        db.commit()
        flash(_("Not sent: %(error)s", error=str(err)), "error")
        return back
    audit(db, actor, "send_document", document.reference, f"to {_masked(message['To'])}")
    db.commit()
    flash(_("%(ref)s sent to %(to)s.", ref=document.reference, to=message["To"]), "ok")
    return back
