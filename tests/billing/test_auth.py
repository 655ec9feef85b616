from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.auth import decide
from billing.config import BillingConfig
from billing.credentials import unlock_credential
from billing.lockouts import backoff_s, lift, slowed_terminals
from billing.models import AuditEntry, utcnow
from billing.visits import close_visit, open_visit
from broker.messages import AuthRequest

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


def _wrong(pin: str | None) -> str:
    return "999999" if pin != "999999" else "888888"


def test_wrong_pins_slow_the_terminal_down_growing_then_it_hears_pins_again(
    db: Session, pepper: str
) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", actor="t")
    wrong, now = _wrong(checked.pin), utcnow()
    reasons = [
        decide(db, req("pin", wrong), pepper=pepper, rules=RULES, now=now).reason for _ in range(6)
    ]
    assert reasons == ["wrong PIN"] * 5 + ["wrong PIN: try again in 2 s"]
    assert checked.pin is not None
    waiting = decide(
        db, req("pin", checked.pin), pepper=pepper, rules=RULES, now=now + timedelta(seconds=1)
    )
    assert not waiting.allow and waiting.reason == "too many wrong PINs: try again in 1 s"
    later = now + timedelta(seconds=2)
    assert (
        decide(db, req("pin", wrong), pepper=pepper, rules=RULES, now=later).reason
        == "wrong PIN: try again in 4 s"
    )
    assert decide(
        db, req("pin", checked.pin), pepper=pepper, rules=RULES, now=later + timedelta(seconds=4)
    ).allow


def test_the_wait_doubles_up_to_its_cap_and_nothing_waits_for_staff(
    db: Session, pepper: str
) -> None:
    assert [backoff_s(n, RULES) for n in range(4, 14)] == [0, 0, 2, 4, 8, 16, 32, 60, 60, 60]
    checked = open_visit(db, pepper=pepper, category="walk-in", actor="t")
    at = utcnow()
    for _ in range(40):  # a guesser who always waits out the back-off
        answer = decide(db, req("pin", _wrong(checked.pin)), pepper=pepper, rules=RULES, now=at)
        at += timedelta(
            seconds=int(answer.reason.rsplit(" ", 2)[-2]) if "try again" in answer.reason else 0
        )
    assert checked.pin is not None
    assert decide(
        db, req("pin", checked.pin), pepper=pepper, rules=RULES, now=at + timedelta(seconds=60)
    ).allow


def test_badges_and_other_terminals_work_while_a_terminal_waits(db: Session, pepper: str) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", badge_uid="A9", actor="t")
    now = utcnow()
    for _ in range(10):
        decide(db, req("pin", _wrong(checked.pin)), pepper=pepper, rules=RULES, now=now)
    assert decide(db, req("badge", "A9"), pepper=pepper, rules=RULES, now=now).allow
    assert checked.pin is not None
    assert decide(
        db, req("pin", checked.pin, "sewing-1"), pepper=pepper, rules=RULES, now=now
    ).allow


def test_staff_lift_a_waiting_terminal_and_the_audit_log_says_so(db: Session, pepper: str) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", actor="t")
    now = utcnow()
    for _ in range(8):
        decide(db, req("pin", _wrong(checked.pin)), pepper=pepper, rules=RULES, now=now)
    assert set(slowed_terminals(db, now)) == {"laser-1"}
    lift(db, "laser-1", actor="alice")
    assert slowed_terminals(db, now) == {}
    assert checked.pin is not None
    assert decide(db, req("pin", checked.pin), pepper=pepper, rules=RULES, now=now).allow
    log = [
        (e.actor, e.action, e.subject)
        for e in db.scalars(select(AuditEntry).order_by(AuditEntry.id))
    ]
    assert ("billing", "terminal_slowed", "terminal laser-1") in log
    assert ("alice", "lift_terminal", "terminal laser-1") in log


def test_an_agent_asks_only_for_its_own_machines(db: Session, pepper: str) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", actor="t")
    assert checked.pin is not None
    foreign = decide(db, req("pin", checked.pin), pepper=pepper, rules=RULES, agent="pi-printer")
    assert not foreign.allow and foreign.reason == "laser-1 is not a machine of pi-printer"
    for _ in range(10):  # its wrong PINs naming another agent's machine slow nothing down
        decide(db, req("pin", _wrong(checked.pin)), pepper=pepper, rules=RULES, agent="pi-printer")
    assert decide(db, req("pin", checked.pin), pepper=pepper, rules=RULES, agent="pi-laser").allow


def test_wrong_pins_spread_over_more_than_the_window_do_not_slow_down(
    db: Session, pepper: str
) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", actor="t")
    wrong = _wrong(checked.pin)
    start = utcnow()
    for i in range(5):
        decide(db, req("pin", wrong), pepper=pepper, rules=RULES, now=start + timedelta(seconds=i))
    later = start + timedelta(minutes=16)
    assert (
        decide(db, req("pin", wrong), pepper=pepper, rules=RULES, now=later).reason == "wrong PIN"
    )
    assert checked.pin is not None
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
