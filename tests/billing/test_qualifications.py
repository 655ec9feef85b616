"""Only trained people unlock a machine; out-of-service machines unlock for nobody; online and
offline (the allow-list) decide the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.auth import Credential as Presented
from agent.auth import offline_verdict
from billing.allowlists import build, plans
from billing.auth import decide
from billing.catalogue import add_item
from billing.config import BillingConfig
from billing.credentials import badge_hash
from billing.downtime import order, put_back, take_out
from billing.errors import InvalidOperation
from billing.models import AuditEntry, CatalogueItem, Credential, Customer, Machine
from billing.qualifications import define, grant, holders, revoke
from billing.visits import close_visit, open_visit
from broker.messages import AuthRequest

RULES = BillingConfig(allowlist_time_cost=1, allowlist_memory_kib=64)
SESSION = "6f0c2a3e-2222-4000-8000-000000000002"
NOW = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)
TRAINED = "formation requise : découpe laser"


def ask(db: Session, pepper: str, kind: str, secret: str, machine: str = "laser-1", now: datetime = NOW):
    return decide(db, AuthRequest(kind, secret, machine, SESSION), pepper=pepper, rules=RULES, now=now)


def offline(db: Session, pepper: str, kind: str, secret: str, machine: str = "laser-1", now: datetime = NOW):
    """What the agent decides alone from the list billing would publish now."""
    agent = db.get(Machine, machine).agent  # type: ignore[union-attr]
    allowlist = build(db, agent, plans(db, rules=RULES, now=now)[agent], pepper=pepper, rules=RULES, now=now)
    return offline_verdict(allowlist, Presented(kind, secret, machine), now_s=now.timestamp(), synced=True,
                           spent_cents=0)  # fmt: skip


def both(db: Session, pepper: str, kind: str, secret: str, now: datetime = NOW) -> tuple[str | None, str | None]:
    """(online refusal code or None, offline refusal code or None), with the messages equal."""
    online, alone = ask(db, pepper, kind, secret, now=now), offline(db, pepper, kind, secret, now=now)
    if not online.allow and online.code == "not_qualified":
        assert alone.reason == online.reason
    return (None if online.allow else online.code), (None if alone.accepted else alone.code)


@pytest.fixture
def laser(db: Session) -> str:
    define(db, "laser", "découpe laser", machines=["laser-1"], actor="admin")
    return "laser"


@pytest.fixture
def customer(db: Session, pepper: str) -> Customer:
    person = Customer(ref="C-0001", name="Léa Martin", badge_hash=badge_hash(pepper, "0A1B2C3D"))
    db.add(person)
    db.flush()
    return person


def test_an_untrained_walk_in_is_refused_online_and_offline_with_the_same_french_message(
    db: Session, pepper: str, laser: str
) -> None:
    pin = open_visit(db, pepper=pepper, category="walk-in", actor="t", now=NOW).pin
    assert pin is not None
    answer = ask(db, pepper, "pin", pin)
    assert (answer.allow, answer.code, answer.reason) == (False, "not_qualified", TRAINED)
    assert both(db, pepper, "pin", pin) == ("not_qualified", "not_qualified")
    assert ask(db, pepper, "pin", pin, machine="sewing-1").allow  # other machines need nothing
    assert db.scalars(select(Credential)).one().failures == 0  # not trained is no reason to lock


def test_a_supervised_session_opens_the_machine_for_this_visit_only(db: Session, pepper: str, laser: str) -> None:
    first = open_visit(db, pepper=pepper, category="walk-in", actor="t", now=NOW)
    other = open_visit(db, pepper=pepper, category="walk-in", actor="t", now=NOW)
    assert first.pin and other.pin
    grant(db, laser, visit_id=first.visit.id, actor="alice", now=NOW)
    assert both(db, pepper, "pin", first.pin) == (None, None)
    assert both(db, pepper, "pin", other.pin) == ("not_qualified", "not_qualified")


def test_a_customer_keeps_a_sold_training_across_visits_found_again_by_their_badge(
    db: Session, pepper: str, laser: str, customer: Customer
) -> None:
    item = db.scalars(select(CatalogueItem).where(CatalogueItem.code == "training-laser")).one()
    item.grants_qualification_id, item.grants_validity_days = db.get(Machine, "laser-1").qualification_id, 365  # type: ignore[union-attr]
    first = open_visit(db, pepper=pepper, category="walk-in", actor="t", customer_id=customer.id, now=NOW).visit
    add_item(db, first.id, "training-laser", Decimal(1), actor="alice", now=NOW)
    close_visit(db, first.id, "cash", actor="alice")
    later = NOW + timedelta(days=120)
    back = open_visit(db, pepper=pepper, category="walk-in", actor="t", badge_uid="0a1b2c3d", now=later).visit
    assert back.customer_id == customer.id  # their own badge found them
    assert both(db, pepper, "badge", "0A1B2C3D", now=later) == (None, None)
    assert item.grants_qualification_id is not None
    assert [h.who for h in holders(db, item.grants_qualification_id, later)] == ["Léa Martin"]
    close_visit(db, back.id, "cash", actor="alice")
    next_year = NOW + timedelta(days=400)  # the training sold was valid 365 days
    open_visit(db, pepper=pepper, category="walk-in", actor="t", badge_uid="0A1B2C3D", now=next_year)
    assert both(db, pepper, "badge", "0A1B2C3D", now=next_year) == ("not_qualified", "not_qualified")


def test_a_loan_badge_carries_no_qualification(db: Session, pepper: str, laser: str, customer: Customer) -> None:
    grant(db, laser, customer_id=customer.id, actor="alice", now=NOW)
    walk_in = open_visit(db, pepper=pepper, category="walk-in", actor="t", badge_uid="77665544", now=NOW).visit
    assert walk_in.customer_id is None
    assert both(db, pepper, "badge", "77665544") == ("not_qualified", "not_qualified")


def test_expired_and_revoked_qualifications_refuse_and_the_list_entry_expires_with_them(
    db: Session, pepper: str, laser: str, customer: Customer
) -> None:
    row = grant(db, laser, customer_id=customer.id, actor="alice", expires_at=NOW + timedelta(hours=2), now=NOW)
    pin = open_visit(db, pepper=pepper, category="walk-in", actor="t", customer_id=customer.id, now=NOW).pin
    assert pin is not None
    assert both(db, pepper, "pin", pin) == (None, None)
    # a list issued while still qualified is held by an agent that goes offline past the expiry
    allowlist = build(db, "pi-laser", plans(db, rules=RULES, now=NOW)["pi-laser"], pepper=pepper, rules=RULES, now=NOW)
    late = (NOW + timedelta(hours=3)).timestamp()
    assert offline_verdict(allowlist, Presented("pin", pin, "laser-1"), now_s=late, synced=True,
                           spent_cents=0).code == "not_qualified"  # fmt: skip
    assert both(db, pepper, "pin", pin, now=NOW + timedelta(hours=3)) == ("not_qualified", "not_qualified")
    revoke(db, row.id, actor="alice", now=NOW)
    assert both(db, pepper, "pin", pin) == ("not_qualified", "not_qualified")


def test_a_grant_names_one_customer_or_one_open_visit(db: Session, pepper: str, laser: str, customer: Customer) -> None:
    visit = open_visit(db, pepper=pepper, category="walk-in", actor="t", now=NOW).visit
    with pytest.raises(InvalidOperation, match="not both or neither"):
        grant(db, laser, customer_id=customer.id, visit_id=visit.id, actor="alice")
    close_visit(db, visit.id, "cash", actor="t")
    with pytest.raises(InvalidOperation, match="closed"):
        grant(db, laser, visit_id=visit.id, actor="alice")


def test_out_of_service_refuses_everyone_and_putting_it_back_is_audited(db: Session, pepper: str) -> None:
    pin = open_visit(db, pepper=pepper, category="walk-in", actor="t", now=NOW).pin
    assert pin is not None
    machine = take_out(db, "sewing-1", "aiguille cassée", actor="alice", now=NOW)
    answer = ask(db, pepper, "pin", pin, machine="sewing-1")
    assert (answer.allow, answer.code, answer.reason) == (False, "out_of_service", "hors service : aiguille cassée")
    assert order(machine).out_of_service and order(machine).since == int(NOW.timestamp())
    put_back(db, "sewing-1", actor="bob")
    assert ask(db, pepper, "pin", pin, machine="sewing-1").allow and not order(machine).out_of_service
    log = [(a.actor, a.action, a.detail) for a in db.scalars(select(AuditEntry).where(AuditEntry.subject == "machine sewing-1"))]
    assert log == [("alice", "out_of_service", "aiguille cassée"), ("bob", "back_in_service", "was out: aiguille cassée")]
    with pytest.raises(InvalidOperation, match="say why"):
        take_out(db, "sewing-1", "   ", actor="alice")


def test_a_training_line_taken_back_takes_its_qualification_back(
    db: Session, pepper: str, laser: str, customer: Customer
) -> None:
    from billing.lines import remove_line

    item = db.scalars(select(CatalogueItem).where(CatalogueItem.code == "training-laser")).one()
    item.grants_qualification_id = db.get(Machine, "laser-1").qualification_id  # type: ignore[union-attr]
    checked = open_visit(db, pepper=pepper, category="walk-in", actor="t", customer_id=customer.id, now=NOW)
    assert checked.pin is not None
    line = add_item(db, checked.visit.id, "training-laser", actor="alice", now=NOW)
    assert both(db, pepper, "pin", checked.pin) == (None, None)
    remove_line(db, line.id, "vendue par erreur", actor="alice")
    db.commit()  # on PostgreSQL the grant must not point at the deleted line
    assert both(db, pepper, "pin", checked.pin) == ("not_qualified", "not_qualified")
