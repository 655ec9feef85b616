"""Every page a person can open, in French and in English: no message without its French
translation, no raw code ("walk-in", "priced", "busy", "issue_receipt", "laser-1") shown.

The pages are found by walking ``app.url_map``, so a new page is checked without being listed
here; ``ARGUMENTS`` gives the values of the URL parts, made by ``populated``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from decimal import Decimal
from gettext import NullTranslations
from html.parser import HTMLParser
from typing import Any

import flask_babel
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.catalogue import add_item
from billing.charges import charge_session
from billing.config import BillingConfig
from billing.errors import BillingError
from billing.ledger.documents import Document
from billing.live import LiveState
from billing.lockouts import count_wrong_pin
from billing.models import (
    LINE_KINDS,
    MACHINE_KINDS,
    ROLES,
    SESSION_STATES,
    TIME_BASES,
    VISIT_STATES,
    Category,
    Credential,
    Customer,
    Machine,
    UsageSession,
    utcnow,
)
from billing.qualifications import define
from billing.reports import Period, takings
from billing.visits import open_visit
from broker.messages import JOB_OUTCOMES, MACHINE_STATES, AgentStatus, MachineState
from dashboard.labels import LABELS, error
from dashboard.wall import make_link
from tests.dashboard.conftest import PEPPER
from tests.dashboard.test_desk import close

SKIPPED = {"static", "live.events", "wall.events", "health", "auth.language", "home"}  # not pages: a stream, JSON, redirects
IGNORED = {"script", "style", "code"}  # <code> shows an identifier on purpose (admin: a machine's id)
SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")


class Recorder(NullTranslations):
    """The last fallback of the French catalogue: whatever reaches it has no translation."""

    def __init__(self) -> None:
        super().__init__()
        self.missing: set[str] = set()

    def gettext(self, message: str) -> str:
        self.missing.add(message)
        return message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        self.missing.add(singular)
        return singular if n == 1 else plural


class Text(HTMLParser):
    """The text a person sees on a page: text nodes and the attributes shown as text."""

    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in IGNORED:
            self._hidden += 1
        found = dict(attrs)
        self.pieces += [found[a] or "" for a in SHOWN_ATTRIBUTES if found.get(a)]
        if tag == "input" and found.get("type") == "submit":
            self.pieces.append(found.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in IGNORED:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.pieces.append(data.strip())


def shown(html: str) -> list[str]:
    parser = Text()
    parser.feed(html)
    return parser.pieces


@dataclass
class Site:
    arguments: dict[str, list[Any]] = field(default_factory=dict)
    codes: set[str] = field(default_factory=set)


def _session(db: Session, machine: str, visit_id: int | None, **kw: Any) -> UsageSession:
    number = db.query(UsageSession).count() + 1
    session = UsageSession(id=f"6f0c2a3e-0000-4000-8000-{number:012d}", agent=f"pi-{machine.split('-')[0]}", machine_id=machine,
                           visit_id=visit_id, **kw)  # fmt: skip
    db.add(session)
    db.flush()
    return session


def _live_board(redis_client: Any, sessions: dict[str, UsageSession]) -> None:
    live = LiveState(redis_client, clock=lambda: 1_800_000_000)
    for agent, machine in (("pi-printer", "printer-1"), ("pi-laser", "laser-1"), ("pi-sewing", "sewing-1")):
        live.status(agent, AgentStatus(online=True, bdseq=1, version="1", machines=(machine,)))
    live.state(MachineState(machine="printer-1", state="printing", wall_ns=0, job="boat.gcode", progress=37.0,
                            elapsed_s=600, remaining_s=1200, session=sessions["printer-1"].id, user="Camille"))
    live.cost("printer-1", sessions["printer-1"].id, 250)
    live.state(MachineState(machine="laser-1", state="busy", wall_ns=0, session=sessions["laser-1"].id,
                            user="Camille", elapsed_s=300))
    live.state(MachineState(machine="sewing-1", state="busy", wall_ns=0, session=sessions["sewing-1"].id,
                            elapsed_s=960))  # fmt: skip


@pytest.fixture
def populated(app: Flask, db: Session, admin: FlaskClient, redis_client: Any) -> Site:
    return populate(db, admin, redis_client)


def populate(db: Session, admin: FlaskClient, redis_client: Any) -> Site:
    """A day at the fablab: an open visit with a print running, a closed one, unclaimed use, a lock.

    ``admin`` is a test client logged in as an admin of the same app (the close goes through the desk).
    """
    checked = open_visit(db, pepper=PEPPER, category="walk-in", name="Camille Martin", badge_uid="0A1B2C3D",
                         with_pin=True, actor="alice")  # fmt: skip
    visit = checked.visit
    add_item(db, visit.id, "plywood-3mm", Decimal(2), actor="alice")
    running = _session(db, "printer-1", visit.id, job="boat.gcode", job_state="running",
                       expected_end_at=utcnow() + timedelta(hours=3))  # fmt: skip
    ended = _session(db, "laser-1", visit.id, state="ended", session_s=400, busy_s=400, ended_at=utcnow())
    charge_session(db, ended)
    unclaimed = _session(db, "sewing-1", None, session_s=960)
    _session(db, "printer-1", None, state="ended", job="phone-stand.gcode", job_s=3000, ended_at=utcnow())
    db.get(Credential, visit.credentials[0].id).locked = True  # type: ignore[union-attr]
    for _ in range(BillingConfig().lockout_failures + 1):
        count_wrong_pin(db, "laser-1", utcnow(), BillingConfig())
    _link, token = make_link(db, "atelier", actor="alice")
    company = Customer(ref="C0042", kind="company", name="Léa Dupont", company_name="Atelier Dupont SARL",
                       company_address="12 rue des Scieurs", postcode="01000", city="Bourg-en-Bresse",
                       country="FR", siren="552100554", email="lea@example.org")  # fmt: skip
    db.add(company)
    db.flush()
    closed = open_visit(db, pepper=PEPPER, category="company", customer_id=company.id, actor="alice").visit
    add_item(db, closed.id, "plywood-3mm", Decimal(1), actor="alice")
    db.commit()
    assert close(admin, closed.id, "card").status_code == 302
    invoice = db.scalars(select(Document).where(Document.visit_id == closed.id)).one()
    _live_board(redis_client, {"printer-1": running, "laser-1": ended, "sewing-1": unclaimed})
    codes = {c for kind in LABELS.values() for c in kind}
    codes |= set(db.scalars(select(Category.code))) | set(db.scalars(select(Machine.id)))
    return Site(
        arguments={"visit_id": [visit.id, closed.id], "machine_id": ["printer-1"], "row_id": [1],
                   "user_id": [1], "session_id": [unclaimed.id], "token": [token],
                   "customer_id": [company.id], "document_id": [invoice.id]},
        codes=codes,
    )  # fmt: skip


def pages(app: Flask, site: Site) -> Iterator[str]:
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in SKIPPED or "GET" not in (rule.methods or ()):
            continue
        missing = [a for a in rule.arguments if a not in site.arguments]
        assert not missing, f"{rule.rule}: give ARGUMENTS for {missing} in populated()"
        names = sorted(rule.arguments)
        combos: list[dict[str, Any]] = [{}]
        for name in names:
            combos = [c | {name: value} for c in combos for value in site.arguments[name]]
        for combo in combos:
            yield rule.build(combo, append_unknown=False)[1]
    yield "/no-such-page"


@pytest.fixture
def recorder(app: Flask) -> Recorder:
    with app.test_request_context():
        translations = flask_babel.get_translations()  # cached per language for the app's life
        found = Recorder()
        translations.add_fallback(found)
    return found


def raw_codes(pieces: list[str], codes: set[str], labels: set[str]) -> list[str]:
    """Codes shown as a whole text, or (with a hyphen or underscore) inside a text."""
    compound = [c for c in codes if re.search(r"[-_]", c)]
    found = [p for p in pieces if p in codes and p not in labels]
    for piece in pieces:
        found += [c for c in compound if re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", piece)]
    return found


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_page_reads_in_the_language_with_labels_not_codes(
    app: Flask, admin: FlaskClient, populated: Site, recorder: Recorder, language: str
) -> None:
    admin.get(f"/language/{language}")
    with app.test_request_context(), flask_babel.force_locale(language):
        labels = {str(text) for kind in LABELS.values() for text in kind.values()}
    problems: dict[str, list[str]] = {}
    checked = 0
    for url in pages(app, populated):
        response = admin.get(url)
        assert response.status_code in (200, 404), f"{url}: {response.status_code}"
        assert response.status_code == 200 or url == "/no-such-page"
        if response.mimetype not in ("text/html", "text/csv", "text/plain"):
            continue  # a PDF: its text is checked by the ledger's own tests
        found = raw_codes(shown(response.text), populated.codes, labels)
        if found:
            problems[url] = found
        checked += 1
    assert checked >= 15
    assert problems == {}, f"raw codes shown: pass them through dashboard/labels.py: {problems}"
    if language == "fr":
        assert recorder.missing == set(), "add these to dashboard/translations/fr/LC_MESSAGES/messages.po"


def test_the_404_page_is_french(admin: FlaskClient) -> None:
    page = admin.get("/no-such-page")
    assert page.status_code == 404
    assert "Page introuvable" in page.text and "Not Found" not in page.text


def test_a_billing_refusal_is_shown_in_french(staff: FlaskClient, db: Session) -> None:
    open_visit(db, pepper=PEPPER, category="walk-in", badge_uid="0A1B2C3D", actor="t")
    db.commit()
    response = staff.post("/desk/check-in", data={"category": "walk-in", "badge": "0a1b2c3d"})
    assert response.status_code == 400
    assert "ce badge est déjà lié à la visite ouverte" in response.text
    assert "already bound" not in response.text


def test_the_labels_cover_every_code_the_ledger_stores() -> None:
    expected = {"machine": MACHINE_STATES, "session": SESSION_STATES, "visit": VISIT_STATES, "basis": TIME_BASES,
                "role": ROLES, "machine_kind": MACHINE_KINDS, "line": LINE_KINDS, "job": ("running", *JOB_OUTCOMES)}
    for kind, codes in expected.items():
        assert set(codes) <= set(LABELS[kind]), kind



def test_audit_entries_read_with_names_and_euros(app: Flask) -> None:
    from dashboard.labels import detail, subject

    with app.test_request_context():
        assert subject("visit 12") == "visite 12"
        assert subject("terminal laser-1") == "clavier de Découpe laser"
        assert detail("269 cents") == "2,69\xa0€"
        assert detail("printer-1 / walk-in v2") == "Imprimante 3D Prusa / Visiteur v2"
        assert detail("4.50 card") == "4,50\xa0€ carte"


def test_refusals_with_values_read_in_french(app: Flask, db: Session) -> None:
    """Refusals whose message carries a value (a code, a date, a choice) are msgids too: the value
    goes in as a parameter, the sentence around it is French."""
    refusals = []
    for refuse in (
        lambda: define(db, "Laser!", "Laser", machines=[], actor="t"),
        lambda: Period.days(date(2026, 3, 2), date(2026, 3, 1), UTC),
        lambda: takings(db, Period.days(date(2026, 3, 1), date(2026, 3, 1), UTC), by="colour"),
    ):
        with pytest.raises(BillingError) as caught:
            refuse()
        refusals.append(caught.value)
    assert str(refusals[0]) == "qualification code 'Laser!': use lowercase letters, digits and hyphens"
    with app.test_request_context():
        shown = [error(err) for err in refusals]
    assert shown[0] == "code de qualification 'Laser!' : utilisez des minuscules, des chiffres et des tirets"
    assert shown[1] == "la période finit (2026-03-01) avant de commencer (2026-03-02)"
    assert shown[2].startswith("les recettes se regroupent par ") and shown[2].endswith(", pas 'colour'")
