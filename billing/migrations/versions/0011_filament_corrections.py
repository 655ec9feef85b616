"""Filament an agent reports after the job ended (``job_corrected``), once per run.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "filament_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("job_key", sa.String(length=500), nullable=False),
        sa.Column("job", sa.String(length=500), nullable=False),
        sa.Column("filament_mm_milli", sa.BigInteger(), nullable=False),
        sa.Column("added_mm_milli", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("line_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("dealt_by", sa.String(length=80), nullable=True),
        sa.Column("dealt_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["line_id"], ["charge_lines.id"], name=op.f("fk_filament_corrections_line_id_charge_lines")),
        sa.ForeignKeyConstraint(["session_id"], ["usage_sessions.id"],
                                name=op.f("fk_filament_corrections_session_id_usage_sessions")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_filament_corrections_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filament_corrections")),
        sa.UniqueConstraint("session_id", "job_key", name=op.f("uq_filament_corrections_session_id")),
    )
    with op.batch_alter_table("filament_corrections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_filament_corrections_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_filament_corrections_state"), ["state"], unique=False)


def downgrade() -> None:
    op.drop_table("filament_corrections")
