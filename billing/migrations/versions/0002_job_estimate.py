"""Sessions keep the whole-file filament estimate, to prorate a cancelled print.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 07:02:31.007852
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_estimate_mm_milli", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_sessions", schema=None) as batch_op:
        batch_op.drop_column("job_estimate_mm_milli")
