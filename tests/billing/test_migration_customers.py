"""Migration 0010 on a ledger that already has customers: a record with a company name or a
SIREN becomes a company, the others people; it also goes back down (both backends)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from billing.database import alembic_config, make_engine, upgrade


def test_existing_customers_get_their_kind_and_the_migration_goes_back(db_url: str) -> None:
    upgrade(db_url, "0009")
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO customers (ref, name, company_name, siren, created_at) VALUES "
            "('C0001', 'Léa', 'Atelier Bois', NULL, '2026-11-01 10:00:00'), "
            "('C0002', NULL, NULL, '552100554', '2026-11-01 10:00:00'), "
            "('C0003', 'Camille', NULL, NULL, '2026-11-01 10:00:00')"))  # fmt: skip
    upgrade(db_url)
    with engine.connect() as connection:
        kinds = dict(connection.execute(text("SELECT ref, kind FROM customers ORDER BY ref")).all())
        assert kinds == {"C0001": "company", "C0002": "company", "C0003": "person"}
        assert connection.execute(text("SELECT count(*) FROM invoice_payments")).scalar() == 0
    engine.dispose()
    command.downgrade(alembic_config(db_url), "0009")
    engine = make_engine(db_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM customers")).scalar() == 3
    engine.dispose()
