from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from billing.auth import AllowlistTracker, allowlists, decide, unlock_terminal
from billing.config import BillingConfig
from billing.credentials import allowlist_salt, unlock_credential
from billing.models import utcnow
from billing.visits import close_visit, open_visit
from broker.messages import AuthRequest, credential_digest

RULES = BillingConfig()
SESSION = "6f0c2a3e-2222-4000-8000-000000000002"


def req(kind: str, secret: str, machine: str = "laser-1") -> AuthRequest:
    return AuthRequest(kind, secret, machine, SESSION)


def test_badge_bound_to_an_open_visit_is_allowed_with_prices(db: Session, pepper: str) -> None:
    visit = open_visit(db, pepper=pepper, category="walk-in", badge_uid="04A1B2", actor="t").visit
    answer = decide(db, req("badge", "04a1b2", "printer-1"), pepper=pepper, rules=RULES)
    assert answer.allow and answer.visit == str(visit.id) and answer.session == SESSION
    assert answer.price_summary == "0,25 €/15 min + 0,06 €/g PLA"


def test_unknown_badge_is_refused(db: Session, pepper: str) -> None:
    answer = decide(db, req("badge", "FFFF"), pepper=pepper, rules=RULES)
    assert not answer.allow and answer.reason.startswith("unknown badge")


def test_closed_visit_is_refused(db: Session, pepper: str) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", badge_uid="B1", actor="t")
    close_visit(db, checked.visit.id, "cash", actor="t")
    assert checked.pin is not None
    badge = decide(db, req("badge", "B1"), pepper=pepper, rules=RULES)
    assert not badge.allow and badge.reason.startswith("visit closed")
    pin = decide(db, req("pin", checked.pin), pepper=pepper, rules=RULES)
    assert not pin.allow and pin.reason == "wrong PIN"  # a closed visit's PIN opens nothing


def test_machine_not_open_to_the_category(db: Session, pepper: str) -> None:
    checked = open_visit(db, pepper=pepper, category="repair-cafe", actor="t")
    assert checked.pin is not None
    answer = decide(db, req("pin", checked.pin), pepper=pepper, rules=RULES)
    assert not answer.allow and answer.reason == "Découpe laser is not open to Repair café"
    assert decide(db, req("pin", checked.pin, "sewing-1"), pepper=pepper, rules=RULES).allow


def test_five_wrong_pins_lock_the_terminal_until_staff_unlock(db: Session, pepper: str) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", actor="t")
    assert checked.pin is not None
    wrong = "999999" if checked.pin != "999999" else "888888"
    now = utcnow()
    reasons = [decide(db, req("pin", wrong), pepper=pepper, rules=RULES, now=now).reason for _ in range(5)]
    assert reasons == ["wrong PIN"] * 4 + ["wrong PIN: terminal locked, ask staff"]
    locked = decide(db, req("pin", checked.pin), pepper=pepper, rules=RULES, now=now)
    assert not locked.allow and locked.reason.startswith("terminal locked")
    assert decide(db, req("pin", checked.pin, "sewing-1"), pepper=pepper, rules=RULES, now=now).allow
    unlock_terminal(db, "laser-1", actor="alice")
    assert decide(db, req("pin", checked.pin), pepper=pepper, rules=RULES, now=now).allow


def test_wrong_pins_spread_over_more_than_the_window_do_not_lock(db: Session, pepper: str) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", actor="t")
    assert checked.pin is not None
    wrong = "999999" if checked.pin != "999999" else "888888"
    start = utcnow()
    for i in range(4):
        decide(db, req("pin", wrong), pepper=pepper, rules=RULES, now=start + timedelta(seconds=i))
    later = start + timedelta(minutes=16)
    assert decide(db, req("pin", wrong), pepper=pepper, rules=RULES, now=later).reason == "wrong PIN"
    assert decide(db, req("pin", checked.pin), pepper=pepper, rules=RULES, now=later).allow


def test_repeated_refusals_lock_the_credential(db: Session, pepper: str) -> None:
    visit = open_visit(db, pepper=pepper, category="repair-cafe", badge_uid="C3", actor="t").visit
    for _ in range(5):
        decide(db, req("badge", "C3"), pepper=pepper, rules=RULES)
    answer = decide(db, req("badge", "C3", "sewing-1"), pepper=pepper, rules=RULES)
    assert not answer.allow and answer.reason == "credential locked: ask staff"
    [badge] = [c for c in visit.credentials if c.kind == "badge"]
    unlock_credential(db, badge.id, actor="alice")
    assert decide(db, req("badge", "C3", "sewing-1"), pepper=pepper, rules=RULES).allow


def test_allowlist_lists_open_visits_with_expiry_and_drops_closed_ones(db: Session, pepper: str) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", badge_uid="D4", actor="t")
    old = open_visit(db, pepper=pepper, category="member", actor="t")
    old.visit.opened_at = utcnow() - timedelta(hours=13)
    db.flush()
    tracker = AllowlistTracker()
    lists = tracker.changed(allowlists(db, pepper=pepper, rules=RULES))
    laser = lists["pi-laser"]
    salt = allowlist_salt(pepper)
    assert laser.salt == salt
    entries = {(e.visit, e.kind): e for e in laser.entries}
    badge = entries[(str(checked.visit.id), "badge")]
    assert badge.credential == credential_digest("badge", "D4", salt) and badge.machines == ("laser-1",)
    assert checked.pin is not None
    assert entries[(str(checked.visit.id), "pin")].credential == credential_digest("pin", checked.pin, salt)
    now = int(utcnow().timestamp())
    assert badge.expires > now
    assert entries[(str(old.visit.id), "pin")].expires < now  # expired: the agent refuses it offline
    assert tracker.changed(allowlists(db, pepper=pepper, rules=RULES)) == {}  # unchanged: not resent
    close_visit(db, checked.visit.id, "card", actor="t")
    changed = tracker.changed(allowlists(db, pepper=pepper, rules=RULES))
    assert {e.visit for e in changed["pi-laser"].entries} == {str(old.visit.id)}
