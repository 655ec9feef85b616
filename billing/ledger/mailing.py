"""Sending a document by e-mail through the ``[smtp]`` settings.

    message = document_message(smtp, to="camille@example.org", subject="Facture F-000003",
                               body="…", attachments=[("F-000003.pdf", pdf_bytes)])
    send(smtp, message)        # raises MailError saying which server and what to check

The one place that talks to the mail server: its errors are wrapped once, here.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from billing.config import SmtpConfig
from billing.errors import BillingError


class MailError(BillingError):
    """A document could not be sent; the message names the mail server and what to check."""


def checked_address(text: str) -> str:
    """One e-mail address as typed ('camille@example.org'); MailError names what was typed otherwise."""
    address = text.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c in address for c in " ,;<>\r\n\t\"'"):
        raise MailError("“%(address)s” is not an e-mail address (camille@example.org)", address=address[:80])
    return address


def document_message(smtp: SmtpConfig, *, to: str, subject: str, body: str,
                     attachments: list[tuple[str, bytes]]) -> EmailMessage:  # fmt: skip
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = smtp.sender, checked_address(to), subject
    message["Date"], message["Message-ID"] = formatdate(localtime=False), make_msgid(domain=smtp.sender.rpartition("@")[2])
    message.set_content(body)
    for name, pdf in attachments:
        message.add_attachment(pdf, maintype="application", subtype="pdf", filename=name)
    return message


def send(smtp: SmtpConfig, message: EmailMessage) -> None:
    if smtp.host is None:
        raise MailError('e-mail is not set up: fill in [smtp] host and from in server.toml')
    where = f"{smtp.host}:{smtp.port}"
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as server:
            if smtp.starttls:
                server.starttls(context=ssl.create_default_context())
            if smtp.user is not None:
                server.login(smtp.user, smtp.password or "")
            server.send_message(message)
    except smtplib.SMTPAuthenticationError as err:
        raise MailError(
            "the mail server %(server)s refused the login of %(user)s — check [smtp] user and password_file",
            server=where, user=smtp.user,
        ) from err
    except smtplib.SMTPRecipientsRefused as err:
        raise MailError("the mail server %(server)s refused the address %(to)s", server=where, to=message["To"]) from err
    except (smtplib.SMTPException, ssl.SSLError, OSError) as err:
        raise MailError(
            "no mail sent through %(server)s (%(err)s) — is the server reachable and are [smtp] port and starttls right?",
            server=where, err=str(err),
        ) from err
