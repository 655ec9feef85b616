"""A ledger that holds against someone who has read the code: keyed seals, anchors, and the
edits the plain hash chain let through (recomputed hashes, a deleted tail, unknown series)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from billing.ledger.chain import canonical, close_day, link_hash, problems, verify
from billing.ledger.documents import Chain, Document
from billing.ledger.receipts import close_with_receipt, issue_credit_note
from fabmeter import main
from tests.receipts.conftest import KEY, ORG, walk_in

D1 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
PARIS = ORG.zone
AFTER = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _three_receipts(db: Session) -> list[Document]:
    return [
        close_with_receipt(db, walk_in(db, ("plywood-3mm", n), opened=D1), "card", actor="alice",
                           organisation=ORG, now=D1)  # fmt: skip
        for n in ("1", "2", "3")
    ]


def _rechain(db: Session, series: str) -> None:
    """What someone who read billing/ledger/chain.py does after editing contents: recompute it all."""
    prev = "0" * 64
    db.expire_all()
    docs = db.scalars(select(Document).where(Document.series == series).order_by(Document.number))
    for doc in docs:
        doc.prev_hash, doc.hash = prev, link_hash(prev, doc.content)
        prev = doc.hash
    chain = db.get(Chain, series)
    assert chain is not None
    chain.last_hash = prev
    chain.last_number = db.scalar(select(Document.number).where(Document.series == series)
                                  .order_by(Document.number.desc()).limit(1)) or 0  # fmt: skip
    db.commit()


def test_documents_rewritten_with_every_hash_recomputed_are_caught_by_the_seals(keyed: Session) -> None:
    db = keyed
    first, *_ = _three_receipts(db)
    assert verify(db, key=KEY) is None
    content = json.loads(first.content)
    content["lines"] = []  # two lines removed from R-000001
    content["total_cents"] = 0
    content["payments"] = {"card": 0}
    db.execute(text("UPDATE documents SET content = :c, total_cents = 0 WHERE id = :i"),
               {"c": canonical(content), "i": first.id})  # fmt: skip
    forged = Document(series="R", number=4, kind="receipt", issued_at=D1, visit_id=None, customer_ref=None,
                      payment_method="card", total_cents=100, content=canonical({"v": 1}), prev_hash="",
                      hash="f" * 64, issued_by="mallory")  # fmt: skip
    forged.content = canonical({"v": 1, "series": "R", "number": 4, "kind": "receipt", "visit": None,
                                "customer_ref": None, "total_cents": 100, "issued_at": "2026-11-25T16:00:00Z",
                                "payments": {"card": 100}, "credit_note_of": None, "issued_by": "mallory"})  # fmt: skip
    db.add(forged)
    db.commit()
    _rechain(db, "R")
    assert verify(db) is None  # the plain chain is fooled: that is why the seals exist
    found = {str(b) for b in problems(db, key=KEY)}
    assert "R-000001: its seal does not match: rewritten without the ledger key" in found
    assert "R-000004: has no seal: written by someone who does not hold the ledger key" in found
    assert verify(db, key="another key entirely") is not None  # a key this ledger never had


def test_a_deleted_tail_with_its_seal_and_a_rewound_head_is_caught_by_the_anchors(
    keyed: Session, tmp_path: Path
) -> None:
    anchors = tmp_path / "ledger.anchors"
    db = keyed
    _three_receipts(db)
    closure = close_day(db, date(2026, 11, 25), tz=PARIS, actor="alice", now=AFTER, anchors=anchors)
    line = json.loads(anchors.read_text().splitlines()[0])
    assert line["hash"] == closure.hash and line["heads"]["R"][0] == 3
    assert verify(db, key=KEY, anchors=anchors) is None
    db.execute(text("DELETE FROM ledger_seals WHERE chain = 'R' AND number = 3"))
    db.execute(text("DELETE FROM print_jobs"))
    db.execute(text("DELETE FROM documents WHERE series = 'R' AND number = 3"))
    db.commit()
    _rechain(db, "R")
    db.execute(text("DELETE FROM ledger_seals WHERE chain = 'Z-DAY'"))
    db.execute(text("DELETE FROM closures"))
    db.execute(text("UPDATE ledger_chains SET last_number = 0, last_hash = :g WHERE code = 'Z-DAY'"),
               {"g": "0" * 64})  # fmt: skip
    db.commit()
    assert verify(db, key=KEY) is None  # seals and chains are consistent again: only the anchors know
    found = [str(b) for b in problems(db, key=KEY, anchors=anchors)]
    assert any(f.startswith("closure day 2026-11-25: anchored outside the database") for f in found)
    assert any(f.startswith("R-000003: was the head of R") for f in found)


def test_unknown_series_kinds_and_chains_are_reported_not_counted(db: Session) -> None:
    close_with_receipt(db, walk_in(db, ("plywood-3mm", "1")), "card", actor="a", organisation=ORG, now=D1)
    db.execute(text("INSERT INTO ledger_chains (code, kind, last_number, last_hash) VALUES ('X', 'x', 1, :h)"),
               {"h": "0" * 64})  # fmt: skip
    db.execute(text("UPDATE documents SET kind = 'invoice' WHERE series = 'R'"))
    db.execute(text(
        "INSERT INTO closures (kind, period, number, closed_at, closed_by, total_cents, grand_total_cents,"
        " content, prev_hash, hash) VALUES ('week', '2026-W48', 1, '2026-11-30 00:00:00', 'm', 0, 0, '{}',"
        " :g, :h)"), {"g": "0" * 64, "h": "e" * 64})  # fmt: skip
    db.commit()
    found = {str(b) for b in problems(db)}
    assert "chain X: is not a chain fabmeter keeps" in found
    assert "R-000001: kind 'invoice' where series R holds receipt" in found
    assert "closure week 2026-W48: kind 'week' is not one of day, month, year" in found


def test_who_issued_and_what_a_credit_note_cancels_are_checked_against_the_content(db: Session) -> None:
    receipt = close_with_receipt(db, walk_in(db, ("plywood-3mm", "1")), "card", actor="alice",
                                 organisation=ORG, now=D1)  # fmt: skip
    other = close_with_receipt(db, walk_in(db, ("plywood-3mm", "1")), "card", actor="alice",
                               organisation=ORG, now=D1)  # fmt: skip
    issue_credit_note(db, receipt.id, "erreur", actor="bob", now=D1)
    assert verify(db) is None
    db.execute(text("UPDATE documents SET issued_by = 'carol' WHERE series = 'R' AND number = 2"))
    db.execute(text("UPDATE documents SET credit_note_of = :o WHERE series = 'A'"), {"o": other.id})
    db.commit()
    found = {str(b) for b in problems(db)}
    assert "R-000002: column issued_by says 'carol' but the hashed content says 'alice'" in found
    assert any(f.startswith("A-000001: column credit_note_of says 'R-000002'") for f in found)


def _config(tmp_path: Path, database: Path) -> Path:
    (tmp_path / "secrets").mkdir(exist_ok=True)
    (tmp_path / "secrets" / "pepper").write_text("p")
    (tmp_path / "secrets" / "ledger.key").write_text(KEY)
    path = tmp_path / "server.toml"
    path.write_text(
        f'database_url = "sqlite:///{database}"\npepper_file = "secrets/pepper"\n'
        'ledger_key_file = "secrets/ledger.key"\nanchor_file = "ledger.anchors"\n'
        '[organisation]\nname = "Fablab du Val"\naddress = "1 place de la Mairie"\nsiret = "1"\n'
    )
    return path


def test_verify_names_a_corrupt_database_instead_of_a_traceback(tmp_path: Path) -> None:
    database = tmp_path / "ledger.db"
    runner = CliRunner()
    config = _config(tmp_path, database)
    assert runner.invoke(main, ["db", "upgrade", "--config", str(config)]).exit_code in (0, 2)
    database.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)  # a header, then garbage pages
    broken = runner.invoke(main, ["ledger", "verify", "--config", str(config)])
    assert broken.exit_code == 1, broken.output
    assert "Traceback" not in broken.output and "BROKEN database" in broken.output or (
        "the ledger cannot be read" in broken.output
    )


def test_the_backup_keeps_only_a_copy_that_passes_the_integrity_check(tmp_path: Path) -> None:
    script = Path(__file__).parents[2] / "deploy" / "backup-sqlite.sh"
    good = tmp_path / "good.db"
    subprocess.run(["python3", "-c", f"import sqlite3; c = sqlite3.connect('{good}'); "
                    "c.execute('create table t (x)'); c.commit()"], check=True)  # fmt: skip
    anchors = tmp_path / "ledger.anchors"
    anchors.write_text('{"closure": "day 2026-11-25"}\n')
    out = tmp_path / "backups"
    subprocess.run(["sh", str(script), str(good), str(out), "30", str(anchors)], check=True)
    assert len(list(out.glob("*.db.gz"))) == 1 and len(list(out.glob("*.anchors"))) == 1
    assert not list(out.glob("*.db")) and not list(out.glob("*.part"))
    bad = tmp_path / "bad.db"
    bad.write_bytes(good.read_bytes()[:100] + b"\x00" * 4000)  # pages lost
    failed = subprocess.run(["sh", str(script), str(bad), str(tmp_path / "b2"), "30"], capture_output=True)
    assert failed.returncode != 0
    assert not list((tmp_path / "b2").glob("*"))  # no partial file left behind
