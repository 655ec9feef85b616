"""The signed yearly archive: written by ``fabmeter ledger archive``, checked by
``fabmeter ledger verify-archive`` with no database; one changed byte, a removed document, a
changed total re-signed with another key are caught."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from billing.ledger.archive import archive_problems, build, sign
from billing.ledger.chain import close_day, close_month
from billing.ledger.receipts import close_with_receipt, issue_credit_note
from fabmeter import main
from tests.receipts.conftest import ORG, walk_in

D1 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
D2 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
AFTER = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _pem() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _year(db: Session) -> None:
    receipt = close_with_receipt(db, walk_in(db, ("plywood-3mm", "2"), opened=D1), "card", actor="alice",
                                 organisation=ORG, now=D1)  # fmt: skip
    close_with_receipt(db, walk_in(db, ("plywood-3mm", "1"), opened=D2), "cash", actor="alice",
                       organisation=ORG, now=D2)  # fmt: skip
    issue_credit_note(db, receipt.id, "erreur", actor="bob", now=D2)
    db.commit()
    close_day(db, date(2026, 11, 25), tz=ORG.zone, actor="alice", now=AFTER)
    close_day(db, date(2026, 11, 26), tz=ORG.zone, actor="alice", now=AFTER)
    close_month(db, 2026, 11, tz=ORG.zone, actor="alice", now=AFTER)


def _signed(db: Session, pem: str) -> dict:
    _year(db)
    return json.loads(sign(build(db, 2026, tz=ORG.zone), pem))


def test_an_archive_holds_the_year_and_checks_out_on_both_databases(any_db: Session) -> None:
    archive = _signed(any_db, _pem())
    data = archive["archive"]
    assert [d["chain"] for d in data["documents"]] == ["R", "R", "A"]
    assert {c["chain"] for c in data["closures"]} == {"Z-DAY", "Z-MONTH"}
    assert any(json.loads(e["content"])["action"] == "close_month" for e in data["events"])
    assert archive_problems(archive, expected=archive["fingerprint"]) == []


def test_one_changed_byte_is_caught(db: Session) -> None:
    archive = _signed(db, _pem())
    text = json.dumps(archive).replace('\\"total_cents\\":', '\\"total_cents\\": ', 1)
    assert archive_problems(json.loads(text)) == [
        "the signature does not match: the archive was changed after it was signed"
    ]


def test_a_removed_document_re_signed_with_another_key_is_caught(db: Session) -> None:
    archive = _signed(db, _pem())
    kept = archive["fingerprint"]
    data = archive["archive"]
    del data["documents"][1]  # R-000002, in the middle of the year
    forged = json.loads(sign(data, _pem()))
    found = archive_problems(forged, expected=kept)
    assert found[0].startswith(f"signed by key {forged['fingerprint']}, not by {kept}")
    assert any(f.startswith("closure day 2026-11-26: documents recorded 2") for f in found), found
    found = archive_problems(forged)  # even without the fingerprint, the chains inside tell
    assert any("R n° 1" in f or "A n° 1" in f or "closure" in f for f in found), found


def test_a_rewritten_total_with_recomputed_hashes_still_fails_the_closures(db: Session) -> None:
    from billing.ledger.chain import canonical, link_hash

    archive = _signed(db, _pem())
    data = archive["archive"]
    doc = data["documents"][0]
    content = json.loads(doc["content"]) | {"total_cents": 1, "payments": {"card": 1}}
    doc["content"] = canonical(content)
    doc["hash"] = link_hash(doc["prev_hash"], doc["content"])
    data["documents"][1]["prev_hash"] = doc["hash"]
    data["documents"][1]["hash"] = link_hash(doc["hash"], data["documents"][1]["content"])
    found = archive_problems(json.loads(sign(data, _pem())))
    assert any(f.startswith("closure day 2026-11-25: totals recorded") for f in found), found


def _config(tmp_path: Path, database: Path, *, key: bool) -> Path:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "pepper").write_text("p")
    if key:
        (secrets / "archive.key").write_text(_pem())
    path = tmp_path / "server.toml"
    path.write_text(
        f'database_url = "sqlite:///{database}"\npepper_file = "secrets/pepper"\n'
        + ('archive_key_file = "secrets/archive.key"\n' if key else "")
        + '[organisation]\nname = "Fablab du Val"\naddress = "1 place de la Mairie"\nsiret = "1"\n'
    )
    return path


def test_the_commands_write_and_check_an_archive_without_the_database(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as db:
        _year(db)
    database = Path(str(sqlite_engine.url.database))
    runner = CliRunner()
    missing = runner.invoke(main, ["ledger", "archive", "--year", "2026", "--config",
                                   str(_config(tmp_path, database, key=False))])  # fmt: skip
    assert missing.exit_code == 1 and "no archive_key_file in" in missing.output
    out = tmp_path / "archive-2026.json"
    made = runner.invoke(main, ["ledger", "archive", "--year", "2026", "--output", str(out),
                                "--config", str(_config(tmp_path, database, key=True))])  # fmt: skip
    assert made.exit_code == 0, made.output
    fingerprint = json.loads(out.read_text())["fingerprint"]
    assert fingerprint in made.output
    database.unlink()  # years later: no database at all
    checked = runner.invoke(main, ["ledger", "verify-archive", str(out), "--key", fingerprint])
    assert checked.exit_code == 0, checked.output
    assert "archive 2026 intact: 3 documents, 3 closures and" in checked.output
    other = runner.invoke(main, ["ledger", "verify-archive", str(out), "--key", "0" * 32])
    assert other.exit_code == 1 and "not by 00000000000000000000000000000000" in other.output
