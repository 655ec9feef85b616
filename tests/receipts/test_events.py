"""The event log: key actions chained and sealed like the documents; every edit, removal,
reordering, rewrite with recomputed hashes and deleted tail is named by ``verify``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from billing.customers import erase_visit_name
from billing.ledger.chain import close_day, link_hash, problems, verify
from billing.ledger.documents import Chain
from billing.ledger.events import EVENTS, Event, record_organisation
from billing.ledger.printing import reprint
from billing.ledger.receipts import close_with_receipt, issue_credit_note
from billing.tariffs import set_tariff
from billing.visits import add_discount
from tests.receipts.conftest import KEY, ORG, walk_in

D1 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
AFTER = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _actions(db: Session) -> list[str]:
    return list(db.scalars(select(Event.action).order_by(Event.number)))


def _busy_day(db: Session, anchors: Path | None = None) -> None:
    """A tariff change, a discount, a receipt, its duplicate, a credit note, an erasure, a closure."""
    from decimal import Decimal

    set_tariff(db, "laser-1", "walk-in", unit_price_cents=60, actor="alice")
    db.commit()
    visit = walk_in(db, ("plywood-3mm", "2"), name="Jeanne", opened=D1)
    add_discount(db, visit, Decimal("1"), "bénévole", actor="alice")
    db.commit()
    receipt = close_with_receipt(db, visit, "card", actor="alice", organisation=ORG, now=D1)
    reprint(db, receipt.id, actor="bob")
    db.commit()
    issue_credit_note(db, receipt.id, "erreur", actor="bob", now=D1)
    erase_visit_name(db, visit, actor="alice")
    db.commit()
    close_day(db, date(2026, 11, 25), tz=ORG.zone, actor="alice", now=AFTER, anchors=anchors)


def test_key_actions_are_chained_and_sealed_on_both_databases(keyed: Session) -> None:
    db = keyed
    _busy_day(db)
    actions = _actions(db)
    for action in ("ledger_key", "set_tariff", "discount", "reprint", "issue_credit_note",
                   "erase_visit_name", "close_day"):  # fmt: skip
        assert action in actions, actions
    assert "issue_receipt" not in actions  # the receipt is a link of its own chain already
    chain = db.get(Chain, EVENTS)
    assert chain is not None and chain.last_number == len(actions)
    assert verify(db, key=KEY) is None


def test_an_edited_event_is_named(keyed: Session) -> None:
    db = keyed
    _busy_day(db)
    db.execute(text("UPDATE ledger_events SET actor = 'mallory' WHERE action = 'reprint'"))
    db.commit()
    found = {str(b) for b in problems(db, key=KEY)}
    assert any("column actor says 'mallory' but the hashed content says 'bob'" in f for f in found), found


def test_an_event_removed_from_the_middle_breaks_the_chain(keyed: Session) -> None:
    db = keyed
    _busy_day(db)
    db.execute(text("DELETE FROM ledger_events WHERE action = 'reprint'"))
    db.commit()
    found = [str(b) for b in problems(db, key=KEY)]
    assert any("does not chain to the link before it" in f for f in found), found
    assert any("sealed, but no longer in the ledger" in f for f in found), found


def test_two_events_swapped_are_caught(keyed: Session) -> None:
    db = keyed
    _busy_day(db)
    numbers = {action: number for action, number in db.execute(select(Event.action, Event.number))}
    first, second = numbers["reprint"], numbers["issue_credit_note"]
    db.execute(text("UPDATE ledger_events SET number = -1 WHERE number = :a"), {"a": first})
    db.execute(text("UPDATE ledger_events SET number = :a WHERE number = :b"), {"a": first, "b": second})
    db.execute(text("UPDATE ledger_events SET number = :b WHERE number = -1"), {"b": second})
    db.commit()
    found = [str(b) for b in problems(db, key=KEY)]
    assert f"event n° {first}: does not chain to the link before it (one was removed, added or replaced)" in found


def _rewrite_events(db: Session) -> None:
    """Someone who read the code: remove the reprint, renumber, recompute every hash and the head."""
    db.execute(text("DELETE FROM ledger_events WHERE action = 'reprint'"))
    db.commit()
    db.expire_all()
    prev = "0" * 64
    events = list(db.scalars(select(Event).order_by(Event.number)))
    for number, event in enumerate(events, 1):
        content = json.loads(event.content) | {"number": number}
        event.number = -number  # two passes: the numbers are unique
        db.flush()
        event.content = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        event.prev_hash, event.hash = prev, link_hash(prev, event.content)
        prev = event.hash
    db.flush()
    for event in events:
        event.number = -event.number
    chain = db.get(Chain, EVENTS)
    assert chain is not None
    chain.last_number, chain.last_hash = len(events), prev
    db.commit()


def test_events_rewritten_with_every_hash_recomputed_are_caught_by_the_seals(keyed: Session) -> None:
    db = keyed
    _busy_day(db)
    _rewrite_events(db)
    assert not [b for b in problems(db) if b.link.startswith(("event", f"chain {EVENTS}"))]
    found = [str(b) for b in problems(db, key=KEY)]
    assert any(f.startswith("event n°") and "its seal does not match" in f for f in found), found


def test_a_deleted_tail_of_events_with_its_seals_is_caught_by_the_anchors(
    keyed: Session, tmp_path: Path
) -> None:
    anchors = tmp_path / "ledger.anchors"
    db = keyed
    _busy_day(db, anchors)
    head = json.loads(anchors.read_text().splitlines()[-1])["heads"][EVENTS][0]
    assert head == len(_actions(db))  # the closure's own event is anchored with it
    db.execute(text("DELETE FROM ledger_events WHERE number >= :n"), {"n": head - 1})
    db.execute(text("DELETE FROM ledger_seals WHERE chain = :c AND number >= :n"), {"c": EVENTS, "n": head - 1})
    last = db.scalars(select(Event).order_by(Event.number.desc())).first()
    assert last is not None
    db.execute(text("UPDATE ledger_chains SET last_number = :n, last_hash = :h WHERE code = :c"),
               {"n": last.number, "h": last.hash, "c": EVENTS})  # fmt: skip
    db.commit()
    assert not [b for b in problems(db, key=KEY) if EVENTS in b.link or b.link.startswith("event")]
    found = [str(b) for b in problems(db, key=KEY, anchors=anchors)]
    assert any(f.startswith(f"{EVENTS} n° {head}: was the head of {EVENTS}") for f in found), found


def test_an_organisation_change_is_chained_once(db: Session) -> None:
    assert record_organisation(db, ORG)
    assert not record_organisation(db, ORG)  # a restart with the same settings adds nothing
    from dataclasses import replace

    assert record_organisation(db, replace(ORG, siret="999 999 999 00099"))
    details = list(db.scalars(select(Event.detail).where(Event.action == "organisation")))
    assert len(details) == 2 and "999 999 999 00099" in details[1]
    assert verify(db) is None


def test_an_account_made_from_the_command_line_is_sealed_and_verify_stays_intact(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fabmeter import main

    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pepper").write_text("p")
    (tmp_path / "secrets" / "ledger.key").write_text(KEY)
    (tmp_path / "password").write_text("a long enough password 42\n")
    config = tmp_path / "server.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "ledger.db"}"\npepper_file = "secrets/pepper"\n'
        'ledger_key_file = "secrets/ledger.key"\n'
        '[organisation]\nname = "Fablab du Val"\naddress = "1 place de la Mairie"\nsiret = "1"\n'
    )
    runner = CliRunner()
    made = runner.invoke(main, ["admin", "create-user", "--config", str(config), "--username", "alice",
                                "--role", "admin", "--password-file", str(tmp_path / "password")])  # fmt: skip
    assert made.exit_code == 0, made.output
    checked = runner.invoke(main, ["ledger", "verify", "--all", "--config", str(config)])
    assert checked.exit_code == 0, checked.output
    assert "events verified" in checked.output
