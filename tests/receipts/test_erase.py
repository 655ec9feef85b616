"""Erasing a person keeps the ledger whole, and keeps an invoice's buyer for ten years."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.customers import erase_customer, erase_visit_name
from billing.errors import InvalidOperation, NotFound
from billing.ledger.chain import verify
from billing.ledger.documents import Document
from billing.ledger.receipts import close_with_receipt
from billing.models import AuditEntry, Customer, Visit
from fabmeter import main
from tests.receipts.conftest import ORG, company_visit, walk_in


def test_a_named_walk_in_can_be_erased_and_the_chain_stays_green(db: Session) -> None:
    visit_id = walk_in(db, ("mdf-3mm", "1"), name="Camille Durand")
    close_with_receipt(db, visit_id, "cash", actor="alice", organisation=ORG)
    erase_visit_name(db, visit_id, actor="alice")
    db.commit()
    visit = db.get(Visit, visit_id)
    assert visit is not None and visit.label == f"Visiteur {visit_id}"
    assert verify(db) is None
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "erase_visit_name")).one()
    assert "Camille" not in f"{entry.subject} {entry.detail}"


def test_a_company_with_a_recent_invoice_keeps_its_buyer(db: Session) -> None:
    visit_id = company_visit(db)
    document = close_with_receipt(db, visit_id, "transfer", actor="alice", organisation=ORG)
    assert document.kind == "invoice"
    with pytest.raises(InvalidOperation, match=r"C0007 has an invoice .* kept until"):
        erase_customer(db, "C0007", actor="alice")
    db.rollback()
    document = db.get(Document, document.id)
    assert document is not None
    document.issued_at -= timedelta(days=11 * 366)  # eleven years later
    db.commit()
    erase_customer(db, "C0007", actor="alice")
    db.commit()
    customer = db.scalars(select(Customer).where(Customer.ref == "C0007")).one()
    assert (customer.name, customer.company_name, customer.siren) == (None, None, None)
    assert customer.erased_at is not None


def test_an_unknown_customer_is_a_clear_error(db: Session) -> None:
    with pytest.raises(NotFound, match="no customer with reference 'C9999'"):
        erase_customer(db, "C9999", actor="alice")


def test_the_admin_command_erases_a_visit_name(tmp_path: Path) -> None:
    for name in ("pepper", "secret_key"):
        (tmp_path / name).write_text("x" * 32)
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    config = tmp_path / "server.toml"
    config.write_text(f'database_url = "{db_url}"\npepper_file = "pepper"\nsecret_key_file = "secret_key"\n'
                      '[organisation]\nname = "F"\naddress = "A"\nsiret = "1"\n')  # fmt: skip
    from billing.database import make_engine, upgrade
    from billing.seed import seed

    upgrade(db_url)
    engine = make_engine(db_url)
    with Session(engine) as db:
        seed(db)
        db.commit()
        visit_id = walk_in(db, name="Camille Durand")
    runner = CliRunner()
    result = runner.invoke(main, ["admin", "erase", "--config", str(config), "--visit", str(visit_id)])
    assert result.exit_code == 0, result.output
    with Session(engine) as db:
        visit = db.get(Visit, visit_id)
        assert visit is not None and visit.label == f"Visiteur {visit_id}"
    result = runner.invoke(main, ["admin", "erase", "--config", str(config), "--customer", "C404"])
    assert result.exit_code == 1 and "no customer with reference 'C404'" in result.output
    engine.dispose()
