"""Allow-lists: open visits only, no names, a fresh salt and Argon2id digests per list, grants kept."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.auth import Credential as Presented
from agent.auth import offline_verdict
from billing.allowlists import AllowlistTracker, build, held_entry, plans
from billing.config import BillingConfig
from billing.models import AllowlistGrant, Credential, utcnow
from billing.visits import close_visit, open_visit
from broker.messages import Allowlist, credential_digest, decode, encode

RULES = BillingConfig(allowlist_time_cost=1, allowlist_memory_kib=64)  # cheap for tests; same code path


def test_a_list_digests_with_its_own_fresh_salt_and_the_agent_recognises_the_pin(db: Session, pepper: str) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", name="Léa Martin", badge_uid="D4", actor="t")
    assert checked.pin is not None
    plan = plans(db, rules=RULES)["pi-laser"]
    first = build(db, "pi-laser", plan, pepper=pepper, rules=RULES)
    second = build(db, "pi-laser", plan, pepper=pepper, rules=RULES)
    assert first.salt != second.salt and len(first.salt) == 32
    assert {e.credential for e in first.entries}.isdisjoint({e.credential for e in second.entries})
    entries = {e.kind: e for e in first.entries}
    assert entries["pin"].credential == credential_digest("pin", checked.pin, first.salt, time_cost=1, memory_kib=64)
    assert entries["badge"].machines == ("laser-1",) and entries["pin"].visit == str(checked.visit.id)
    wire = encode(first)
    assert b"L\xc3\xa9a" not in wire and b"Martin" not in wire and checked.pin.encode() not in wire
    offline = offline_verdict(decode(Allowlist, wire), Presented("pin", checked.pin, "laser-1"),
                              now_s=utcnow().timestamp(), synced=True, spent_cents=0)  # fmt: skip
    assert offline.accepted and offline.entry is not None and offline.entry.visit == str(checked.visit.id)
    assert not offline_verdict(first, Presented("pin", "000000", "laser-1"), now_s=0, synced=True,
                               spent_cents=0).accepted  # fmt: skip


def test_an_offline_acceptance_is_matched_to_the_entry_that_agent_held(db: Session, pepper: str) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", actor="t")
    assert checked.pin is not None
    allowlist = build(db, "pi-laser", plans(db, rules=RULES)["pi-laser"], pepper=pepper, rules=RULES)
    digest = offline_verdict(allowlist, Presented("pin", checked.pin, "laser-1"), now_s=0, synced=False,
                             spent_cents=0).digest  # fmt: skip
    grant = held_entry(db, "pi-laser", digest)
    assert grant is not None and grant.visit_id == checked.visit.id and grant.machines == "laser-1"
    assert held_entry(db, "pi-printer", digest) is None  # another agent never held it


def test_only_visits_open_now_and_unexpired_are_listed(db: Session, pepper: str) -> None:
    now = utcnow()
    current = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    old = open_visit(db, pepper=pepper, category="member", actor="t").visit
    old.opened_at = now - timedelta(hours=13)
    gone = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    waiting = open_visit(db, pepper=pepper, category="walk-in", actor="t").visit
    db.flush()
    close_visit(db, gone.id, "cash", actor="t")
    waiting.state = "waiting"  # the visitor left while a print runs: nobody starts anything new
    listed = {p.visit for p in plans(db, rules=RULES, now=now)["pi-laser"].entries}
    assert listed == {current.id}


def test_a_list_is_rebuilt_only_when_its_plan_changes(db: Session, pepper: str) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", actor="t")
    tracker = AllowlistTracker()
    assert set(tracker.changed(plans(db, rules=RULES))) >= {"pi-laser", "pi-printer"}
    assert tracker.changed(plans(db, rules=RULES)) == {}  # unchanged: no new hashes, no new list
    close_visit(db, checked.visit.id, "card", actor="t")
    changed = tracker.changed(plans(db, rules=RULES))
    assert "pi-laser" in changed and changed["pi-laser"].entries == ()


def test_the_database_keeps_no_allowlist_digest_and_a_copy_without_the_pepper_opens_nothing(
    db: Session, pepper: str
) -> None:
    checked = open_visit(db, pepper=pepper, category="walk-in", badge_uid="E5", actor="t")
    assert checked.pin is not None
    for credential in db.scalars(select(Credential)):
        assert credential.sealed_secret and checked.pin not in credential.sealed_secret
    build(db, "pi-laser", plans(db, rules=RULES)["pi-laser"], pepper="another-pepper", rules=RULES)
    assert db.scalars(select(AllowlistGrant)).all() == []  # sealed under another pepper: not listed
