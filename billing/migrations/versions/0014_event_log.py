"""The ledger's event log: one more hash chain (EVENTS) of closures, reprints, credit notes,
erasures, key, tariff and organisation changes and staff logins.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 06:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("hash"),
    )
    chains = sa.table("ledger_chains", sa.column("code", sa.String), sa.column("kind", sa.String),
                      sa.column("last_number", sa.Integer), sa.column("last_hash", sa.String))  # fmt: skip
    op.bulk_insert(chains, [{"code": "EVENTS", "kind": "events", "last_number": 0, "last_hash": "0" * 64}])


def downgrade() -> None:
    op.execute("DELETE FROM ledger_seals WHERE chain = 'EVENTS'")
    op.execute("DELETE FROM ledger_chains WHERE code = 'EVENTS'")
    op.drop_table("ledger_events")
