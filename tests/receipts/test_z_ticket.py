"""The day's Z ticket carries the closure's EMPREINTE; ``ledger verify --ticket`` compares what was
printed with what the ledger holds, so a closure rewritten (or removed) after printing is named.

The ticket goes to a ``kind = "file"`` printer (python-escpos ``File``: the bytes as sent)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from billing.ledger.receipts import close_with_receipt
from fabmeter import main
from tests.receipts.conftest import ORG, walk_in

D1 = datetime(2025, 11, 25, 16, 0, tzinfo=UTC)  # long over, whatever today is


def _config(tmp_path: Path, database: Path) -> Path:
    (tmp_path / "secrets").mkdir(exist_ok=True)
    (tmp_path / "secrets" / "pepper").write_text("p")
    path = tmp_path / "server.toml"
    path.write_text(
        f'database_url = "sqlite:///{database}"\npepper_file = "secrets/pepper"\n'
        f'[printer]\nkind = "file"\npath = "{tmp_path / "printer.bin"}"\n'
        '[organisation]\nname = "Fablab du Val"\naddress = "1 place de la Mairie"\nsiret = "1"\n'
    )
    return path


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["ledger", *args])


def test_the_printed_z_ticket_is_compared_by_verify(sqlite_engine: Engine, tmp_path: Path) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as db:
        close_with_receipt(db, walk_in(db, ("plywood-3mm", "2"), opened=D1), "card", actor="alice",
                           organisation=ORG, now=D1)  # fmt: skip
    config = _config(tmp_path, Path(str(sqlite_engine.url.database)))
    closed = _run("close-day", "--date", "2025-11-25", "--print", "--config", str(config))
    assert closed.exit_code == 0, closed.output
    ticket = (tmp_path / "printer.bin").read_bytes().decode("cp858", errors="replace")
    assert "TICKET Z DAY n° 1" in ticket and "Fablab du Val" in ticket
    found = re.search(r"EMPREINTE ((?:[0-9a-f]{4} ){3}[0-9a-f]{4})", ticket)
    assert found is not None and f"EMPREINTE {found[1]}" in closed.output
    printed = f"2025-11-25={found[1]}"
    ok = _run("verify", "--ticket", printed, "--config", str(config))
    assert ok.exit_code == 0, ok.output
    with sqlite_engine.begin() as conn:  # the closure rewritten with a new hash after printing
        conn.execute(text("UPDATE closures SET hash = 'ffff' || substr(hash, 5)"))
    broken = _run("verify", "--ticket", printed, "--config", str(config))
    assert broken.exit_code == 1
    assert f"BROKEN closure day 2025-11-25: the Z ticket says EMPREINTE {found[1].replace(' ', '')}" in broken.output
    missing = _run("verify", "--ticket", "2025-11-24=abcdef01", "--config", str(config))
    assert "the ledger holds no such closure" in missing.output and missing.exit_code == 1
    bad = _run("verify", "--ticket", "2025-13-45=abcd", "--config", str(config))
    assert bad.exit_code == 2 and "the day is YYYY-MM-DD" in bad.output
