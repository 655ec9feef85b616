"""Indexes for reports: visits by close time, sessions by start time.

A month's report then reads only that month, however many years the ledger holds.

Revision ID: 0003
Revises: receipts1
Create Date: 2026-11-26 07:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "receipts1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_visits_closed_at", "visits", ["closed_at"])
    op.create_index("ix_usage_sessions_started_at", "usage_sessions", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_usage_sessions_started_at", table_name="usage_sessions")
    op.drop_index("ix_visits_closed_at", table_name="visits")
