"""The inbox loses its index on session id: nothing looks events up by session, and every
event of a backlog paid for it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 07:55:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_events_session_id"))


def downgrade() -> None:
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbox_events_session_id"), ["session_id"], unique=False)
