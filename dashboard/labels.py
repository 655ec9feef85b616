"""What a person reads for each code the ledger and the board store, in the page's language.

    label("busy", "machine")        # 'en marche' in French, 'in use' in English
    {{ s.state|label("session") }}  # the same as a Jinja filter

Every code a page shows goes through here: machine, session, visit and job states, tariff
bases, credential kinds, roles, machine kinds, payment methods, print states and audit actions.
A code this module does not know is shown as it is (and the page test fails on it).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask import g
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from billing.errors import BillingError
from billing.models import Category, Machine
from billing.visits import Waiting
from dashboard.formats import clock, money
from dashboard.store import ledger

LABELS: dict[str, dict[str, Any]] = {
    "machine": {"offline": _l("offline"), "idle": _l("free"), "busy": _l("in use"),
                "printing": _l("printing"), "paused": _l("paused"), "error": _l("error"),
                "unclaimed": _l("nobody claimed it"), "locked": _l("locked"),
                "out_of_service": _l("out of service")},
    "session": {"open": _l("running"), "ended": _l("ended, not billed yet"), "priced": _l("billed")},
    "end": {"badge_out": _l("badge out"), "job_end": _l("job ended"), "idle_timeout": _l("idle too long"),
            "power_loss_recovered": _l("after a power cut"), "shutdown": _l("agent stopped"),
            "out_of_service": _l("out of service")},
    "visit": {"open": _l("open"), "waiting": _l("waiting for pickup"), "closed": _l("closed")},
    "job": {"running": _l("printing"), "completed": _l("finished"), "cancelled": _l("cancelled"),
            "failed": _l("failed")},
    "basis": {"session": _l("whole session"), "busy": _l("machine running"), "job": _l("job time")},
    "credential": {"badge": _l("badge"), "pin": _l("PIN")},
    "role": {"staff": _l("staff"), "admin": _l("administrator")},
    "machine_kind": {"printer": _l("3D printer"), "laser": _l("laser cutter"), "cnc": _l("CNC"),
                     "sewing": _l("sewing machine"), "other": _l("other machine")},
    "payment": {"cash": _l("Cash"), "card": _l("Card"), "cheque": _l("Cheque"), "transfer": _l("Transfer"),
                "free": _l("Free"), "due": _l("Payment due (invoice)")},
    "document": {"receipt": _l("Receipt"), "invoice": _l("Invoice"), "credit_note": _l("Credit note")},
    "print": {"pending": _l("printing…"), "done": _l("printed"), "failed": _l("not printed")},
    "line": {"time": _l("machine time"), "start_fee": _l("start fee"), "material": _l("material"),
             "item": _l("item"), "discount": _l("discount")},
    "audit": {
        "add_item": _l("item added"), "attach_session": _l("session attached"),
        "claim_refused": _l("claim refused"), "close_visit": _l("visit closed"),
        "create_user": _l("user created"), "credential_locked": _l("credential locked"),
        "discount": _l("discount"), "erase_customer": _l("person erased"),
        "erase_visit_name": _l("visit name erased"), "ledger_key": _l("ledger key"),
        "lift_terminal": _l("PIN pad listens again"), "login": _l("login"), "logout": _l("logout"),
        "login_failed": _l("login failed"), "login_refused": _l("login refused"),
        "mark_waiting": _l("visit kept until pickup"), "no_tariff": _l("no tariff"),
        "offline_auth": _l("accepted offline"), "open_visit": _l("visit opened"),
        "remove_line": _l("line removed"), "reduce_line": _l("line reduced"), "reprint": _l("receipt reprinted"),
        "save_category": _l("category saved"), "save_item": _l("item saved"),
        "save_machine": _l("machine saved"), "save_material": _l("material saved"),
        "save_user": _l("user saved"), "set_password": _l("password changed"),
        "set_tariff": _l("tariff changed"), "unlock_credential": _l("credential unlocked"),
        "usage_after_close": _l("usage after the visit closed"), "terminal_slowed": _l("PIN pad slowed"),
        "issue_receipt": _l("receipt issued"), "issue_invoice": _l("invoice issued"),
        "issue_credit_note": _l("credit note issued"), "close_day": _l("day closed"),
        "close_month": _l("month closed"), "make_wall_link": _l("wall-screen link made"),
        "revoke_wall_link": _l("wall-screen link revoked"),
    },
}  # fmt: skip

# audit subjects and details are written by billing as "visit 12", "269 cents": shown translated
SUBJECT = re.compile(r"^(visit|session|user|terminal|document) (.+)$")
CENTS = re.compile(r"(-?\d+) cents\b")
PAID = re.compile(r"^(-?\d+(?:\.\d+)?) (cash|card|cheque|transfer|free)$")


def _(message: str, **params: Any) -> str:
    return str(gettext(message, **params))


def label(code: str | None, kind: str) -> str:
    """The label of ``code`` among ``kind``'s codes, or the code itself when unknown."""
    if code is None:
        return ""
    found = LABELS[kind].get(code)
    return str(found) if found is not None else code


def _named(text: str) -> str:
    """Machine ids and category codes in a recorded text, replaced by their names."""
    if "ledger_names" not in g:
        names = {m.id: m.name for m in ledger().scalars(select(Machine))}
        g.ledger_names = names | {c.code: c.name for c in ledger().scalars(select(Category))}
    names = g.ledger_names
    if not names:
        return text
    pattern = "|".join(re.escape(code) for code in sorted(names, key=len, reverse=True))
    return re.sub(rf"(?<![\w-])({pattern})(?![\w-])", lambda m: str(names[m.group(1)]), text)


def subject(text: str | None) -> str:
    """'visit 12' → 'visite 12' (what an audit entry is about)."""
    match = SUBJECT.match(text or "")
    if not match:
        return _named(text or "")
    words = {"visit": _("visit %(id)s"), "session": _("session %(id)s"), "user": _("user %(id)s"),
             "terminal": _("PIN pad of %(id)s"), "document": _("document %(id)s")}  # fmt: skip
    return words[match.group(1)] % {"id": _named(match.group(2))}


def detail(text: str | None) -> str:
    """An audit detail with its '269 cents' amounts written as money."""
    text = CENTS.sub(lambda match: money(int(match.group(1)), cents=True), text or "")
    paid = PAID.search(text)  # close_visit records "12.50 card"
    if paid:
        text = f"{money(Decimal(paid.group(1)))} {label(paid.group(2), 'payment').lower()}"
    return _named(text)


def error(err: BillingError) -> str:
    """A refusal from billing, in the page's language (its template is a msgid of the catalogue)."""
    if not err.template:
        return str(err)
    return _(err.template, **err.params) if err.params else _(err.template)


def waiting(w: Waiting) -> str:
    """'attend boat.gcode sur Imprimante 3D, fin à 03:40': what keeps a visit open."""
    machine = machine_name(w.machine)
    if w.job and w.ends_at:
        return _("waiting for %(job)s on %(machine)s, ends %(time)s", job=w.job, machine=machine, time=clock(w.ends_at))
    if w.job:
        return _("waiting for %(job)s on %(machine)s", job=w.job, machine=machine)
    return _("waiting for %(machine)s", machine=machine)


def machine_name(machine_id: str) -> str:
    """A machine's name as staff gave it (its id only when the ledger does not know it)."""
    if "machine_names" not in g:
        g.machine_names = {m.id: m.name for m in ledger().scalars(select(Machine))}
    return str(g.machine_names.get(machine_id, machine_id))


def install(app: Any) -> None:
    app.jinja_env.filters.update(label=label, audit_subject=subject, audit_detail=detail, machine=machine_name,
                                 waiting=waiting)  # fmt: skip
