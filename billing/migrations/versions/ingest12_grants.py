"""Billing decides who pays: the grants it gave (online answers, published allow-list entries),
usage that came after its visit closed, and filament columns wide enough for 10 km.

Revision ID: ingest12
Revises: 0007
Create Date: 2026-12-02 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ingest12"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_grants",
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("agent", sa.String(length=63), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_auth_grants_visit_id_visits")),
        sa.PrimaryKeyConstraint("agent", "session_id", name=op.f("pk_auth_grants")),
    )
    op.create_index(op.f("ix_auth_grants_visit_id"), "auth_grants", ["visit_id"], unique=False)
    with op.batch_alter_table("usage_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("after_close_of", sa.Integer(), nullable=True))
        batch_op.alter_column("filament_mm_milli", type_=sa.BigInteger(), existing_type=sa.Integer())
        batch_op.alter_column("job_estimate_mm_milli", type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    with op.batch_alter_table("usage_sessions", schema=None) as batch_op:
        batch_op.alter_column("job_estimate_mm_milli", type_=sa.Integer(), existing_type=sa.BigInteger())
        batch_op.alter_column("filament_mm_milli", type_=sa.Integer(), existing_type=sa.BigInteger())
        batch_op.drop_column("after_close_of")
    op.drop_index(op.f("ix_auth_grants_visit_id"), table_name="auth_grants")
    op.drop_table("auth_grants")
