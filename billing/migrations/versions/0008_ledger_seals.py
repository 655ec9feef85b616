"""Keyed seals of the ledger's links, the segments of each ledger key, and fiscal-year closures.

Revision ID: 0008
Revises: ingest12
Create Date: 2026-12-02 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "ingest12"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heads", sa.Text(), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_id"),
    )
    op.create_table(
        "ledger_seals",
        sa.Column("chain", sa.String(length=10), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain", "number"),
    )
    chains = sa.table("ledger_chains", sa.column("code", sa.String), sa.column("kind", sa.String),
                      sa.column("last_number", sa.Integer), sa.column("last_hash", sa.String))  # fmt: skip
    op.bulk_insert(chains, [{"code": "Z-YEAR", "kind": "year", "last_number": 0, "last_hash": "0" * 64}])


def downgrade() -> None:
    op.execute("DELETE FROM ledger_chains WHERE code = 'Z-YEAR'")
    op.drop_table("ledger_seals")
    op.drop_table("ledger_segments")
