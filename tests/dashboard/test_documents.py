"""Every document seen again (list, page, PDF, A4) and sent by e-mail to an SMTP server on loopback.

The SMTP server is aiosmtpd's ``Controller`` (aiosmtpd 1.4 docs, "Controller" and "Authentication"):
a real server on 127.0.0.1 that keeps each message it is given, with AUTH LOGIN/PLAIN allowed
without TLS (``auth_require_tls=False``) so the login path is exercised too.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from billing.config import PrinterConfig, ServerConfig, SmtpConfig
from billing.ledger.copies import printed_text
from billing.ledger.documents import Document
from billing.ledger.receipts import close_with_receipt, issue_credit_note
from billing.models import AuditEntry
from tests.dashboard.conftest import login
from tests.receipts.conftest import company_visit, walk_in

DAY1 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Mailbox:
    """What the loopback SMTP server received, and the one login it accepts."""

    port: int
    messages: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"fablab", b"s3cret")
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(_free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port, authenticator=box.authenticate,
                            auth_require_tls=False)  # fmt: skip
    controller.start()
    yield box
    controller.stop()


def _smtp(port: int, **kw: Any) -> SmtpConfig:
    settings = {"host": "127.0.0.1", "port": port, "sender": "fablab@example.org", "starttls": False,
                "user": "fablab", "password": "s3cret", "timeout_s": 5.0} | kw  # fmt: skip
    return SmtpConfig(**settings)


@pytest.fixture
def mailing_app(make_app: Callable[..., Flask], server_config: ServerConfig, mailbox: Mailbox) -> Flask:
    return make_app(FABMETER=replace(server_config, smtp=_smtp(mailbox.port)))


def _staff(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert login(client, "bob").status_code == 302
    return client


def _session(app: Flask) -> Session:
    session: Session = app.extensions["fabmeter.store"].session()
    return session


def _receipts(app: Flask) -> list[Document]:
    """R-000001 on day 1, R-000002 on day 2, and a credit note A-000001 on the first."""
    org = app.config["FABMETER"].organisation
    with _session(app) as db:
        first = close_with_receipt(db, walk_in(db, ("plywood-3mm", "2"), opened=DAY1), "card", actor="bob",
                                   organisation=org, now=DAY1)  # fmt: skip
        second = close_with_receipt(db, walk_in(db, ("mdf-3mm", "1"), opened=DAY2),
                                    {"card": Decimal("2"), "cash": Decimal("1")}, actor="bob",
                                    organisation=org, now=DAY2)  # fmt: skip
        note = issue_credit_note(db, first.id, "plaque abîmée", actor="bob", now=DAY2)
        return [first, second, note]


def _listed(page: str) -> list[str]:
    return re.findall(r'<a href="/documents/\d+">([A-Z]-\d{6})</a>', page)


def test_the_documents_list_is_newest_first_and_filters_by_day_or_number(app: Flask) -> None:
    _receipts(app)
    staff = _staff(app)
    everything = staff.get("/documents/").text
    assert _listed(everything) == ["A-000001", "R-000002", "R-000001"]
    assert "Carte + Espèces" in everything and "27/11/2026 10:30" in everything  # Paris time
    assert _listed(staff.get("/documents/?date=2026-11-26").text) == ["R-000001"]
    assert _listed(staff.get("/documents/?number=R-000002").text) == ["R-000002"]
    assert _listed(staff.get("/documents/?number=1").text) == ["A-000001", "R-000001"]
    for day, number in [("26/11", "R-x"), ("2026-02-30", "R-²"), ("\x00", "R-" + "9" * 30)]:
        bad = staff.get("/documents/", query_string={"date": day, "number": number})
        assert bad.status_code == 200 and _listed(bad.text) == []
        assert "n’est pas une date" in bad.text and "n’est pas un numéro" in bad.text


def test_a_receipt_page_shows_exactly_what_the_printer_printed(
    make_app: Callable[..., Flask], server_config: ServerConfig
) -> None:
    app = make_app(FABMETER=replace(server_config, printer=PrinterConfig(kind="dummy")))
    staff = _staff(app)
    with _session(app) as db:
        visit = walk_in(db, ("plywood-3mm", "2"), name="Zoë — l’atelier")
    from tests.dashboard.test_desk import close

    assert close(staff, visit, "card").status_code == 302
    spooler = app.extensions["fabmeter.printer"]
    assert spooler.wait_idle(10)
    on_paper = printed_text(spooler.transport.dummy.output)
    visit_page = staff.get(f"/desk/visit/{visit}").text
    link = re.search(r'href="(/documents/\d+)" id="document-link"', visit_page)
    assert link is not None
    page = staff.get(link.group(1)).text
    shown = re.search(r'<pre class="receipt-text" id="printed">(.*?)</pre>', page, re.S)
    assert shown is not None and html.unescape(shown.group(1)) == on_paper
    assert "Client : Zoë - l'atelier" in on_paper and "2 plaques × 4,50 €/plaque" in on_paper
    assert "imprimé" in page  # its print job, done


def test_an_invoice_has_its_a4_pdf_and_html_and_a_receipt_its_strip(app: Flask) -> None:
    org = app.config["FABMETER"].organisation
    with _session(app) as db:
        invoice = close_with_receipt(db, company_visit(db), "transfer", actor="bob", organisation=org)
        receipt = close_with_receipt(db, walk_in(db, ("plywood-3mm", "1")), "card", actor="bob", organisation=org)
    staff = _staff(app)
    page = staff.get(f"/documents/{invoice.id}").text
    assert 'id="invoice-pdf"' in page and 'id="invoice-html"' in page
    pdf = staff.get(f"/documents/{invoice.id}/invoice.pdf")
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF-")
    assert "Atelier Bois &amp; Fils SARL" in staff.get(f"/documents/{invoice.id}/invoice.html").text
    assert 'id="invoice-pdf"' not in staff.get(f"/documents/{receipt.id}").text
    assert staff.get(f"/documents/{receipt.id}/invoice.pdf").status_code == 404
    assert staff.get(f"/documents/{receipt.id}/receipt.pdf").data.startswith(b"%PDF-")
    assert staff.get("/documents/999999").status_code == 404


def _attachments(message: Message) -> dict[str, bytes]:
    found = {}
    for part in message.walk():
        if part.get_content_disposition() == "attachment":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_filename() or ""] = payload
    return found


def _body(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    return ""


def test_a_receipt_is_sent_as_its_text_with_a_pdf_and_the_send_is_audited(
    mailing_app: Flask, mailbox: Mailbox
) -> None:
    receipt = _receipts(mailing_app)[0]
    staff = _staff(mailing_app)
    sent = staff.post(f"/documents/{receipt.id}/send", data={"to": " camille@example.org "}, follow_redirects=True)
    assert sent.status_code == 200 and "R-000001 envoyé à camille@example.org" in sent.text
    [message] = mailbox.messages
    assert (message["To"], message["From"]) == ("camille@example.org", "fablab@example.org")
    assert message["Subject"] == "TICKET R-000001 — Fablab du Val"
    assert "Pay\u00e9 par carte bancaire : 9,00 €" in _body(message)
    assert _attachments(message)["R-000001.pdf"].startswith(b"%PDF-")
    assert mailbox.logins == ["fablab"]
    with _session(mailing_app) as db:
        entry = db.query(AuditEntry).filter_by(action="send_document").one()
        assert (entry.actor, entry.subject, entry.detail) == ("bob", "R-000001", "to c…@example.org")


def test_an_invoice_is_sent_with_its_pdf(mailing_app: Flask, mailbox: Mailbox) -> None:
    org = mailing_app.config["FABMETER"].organisation
    with _session(mailing_app) as db:
        invoice = close_with_receipt(db, company_visit(db), "transfer", actor="bob", organisation=org)
    staff = _staff(mailing_app)
    assert staff.post(f"/documents/{invoice.id}/send", data={"to": "compta@bois.example"}).status_code == 302
    [message] = mailbox.messages
    assert message["Subject"].startswith("FACTURE F-000001")
    assert "ci-joint" in _body(message)
    assert _attachments(message)["F-000001.pdf"].startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("smtp", "to", "says"),
    [
        ({"port": "closed"}, "camille@example.org", "Non envoyé : no mail sent through 127.0.0.1:"),
        ({"password": "wrong"}, "camille@example.org", "refused the login of fablab"),
        ({"starttls": True}, "camille@example.org", "STARTTLS extension not supported by server"),
        ({}, "camille at example", "is not an e-mail address"),
        ({"host": None}, "camille@example.org", "e-mail is not set up"),
    ],
)
def test_a_send_that_fails_is_a_message_on_the_page_and_is_audited(
    make_app: Callable[..., Flask], server_config: ServerConfig, mailbox: Mailbox, smtp: dict[str, Any],
    to: str, says: str,
) -> None:  # fmt: skip
    port = _free_port() if smtp.get("port") == "closed" else mailbox.port
    settings = {k: v for k, v in smtp.items() if k != "port"}
    app = make_app(FABMETER=replace(server_config, smtp=_smtp(port, **settings)))
    receipt = _receipts(app)[0]
    staff = _staff(app)
    answer = staff.post(f"/documents/{receipt.id}/send", data={"to": to}, follow_redirects=True)
    assert answer.status_code == 200 and says in html.unescape(answer.text)
    assert mailbox.messages == []
    with _session(app) as db:
        assert db.query(AuditEntry).filter_by(action="send_document_failed", subject="R-000001").count() == 1


def test_without_smtp_settings_the_page_says_how_to_set_it_up(app: Flask) -> None:
    receipt = _receipts(app)[0]
    page = _staff(app).get(f"/documents/{receipt.id}").text
    assert "[smtp]" in page and 'name="to"' not in page
