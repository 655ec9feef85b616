"""``fabmeter admin locks`` and ``fabmeter admin unlock``: what the desk does, from a shell."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy.orm import Session

from billing.config import BillingConfig
from billing.database import make_engine
from billing.lockouts import count_wrong_pin, slowed_terminals
from billing.models import AuditEntry, Credential, utcnow
from billing.visits import open_visit
from fabmeter import main
from tests.dashboard.conftest import PEPPER, write_config


def test_locks_are_listed_and_lifted_from_the_cli_and_audited(
    tmp_path: Path, ledger_path: Path
) -> None:
    config = str(write_config(tmp_path, ledger_path))
    engine = make_engine(f"sqlite:///{ledger_path}")
    with Session(engine) as db:
        for _ in range(8):
            count_wrong_pin(db, "laser-1", utcnow(), BillingConfig())
        credential = open_visit(db, pepper=PEPPER, category="walk-in", actor="t").visit.credentials[
            0
        ]
        credential.locked = True
        db.commit()
        credential_id = credential.id
    listed = CliRunner().invoke(main, ["admin", "locks", "--config", config])
    assert listed.exit_code == 0, listed.output
    assert (
        "terminal laser-1: ignores PINs until" in listed.output
        and "(8 wrong PINs)" in listed.output
    )
    assert f"credential {credential_id}: the pin of visit" in listed.output
    for flag, value in (("--terminal", "laser-1"), ("--credential", str(credential_id))):
        done = CliRunner().invoke(
            main, ["admin", "unlock", "--config", config, flag, value, "--actor", "carol"]
        )
        assert done.exit_code == 0, done.output
    assert CliRunner().invoke(main, ["admin", "unlock", "--config", config]).exit_code == 2
    with Session(engine) as db:
        assert slowed_terminals(db, utcnow()) == {}
        assert db.get(Credential, credential_id).locked is False  # type: ignore[union-attr]
        actions = {(e.actor, e.action) for e in db.query(AuditEntry)}
        assert {("carol", "lift_terminal"), ("carol", "unlock_credential")} <= actions
    engine.dispose()
