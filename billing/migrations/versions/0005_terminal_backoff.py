"""Wrong PINs slow a terminal down for a while instead of locking it until staff come.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 18:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("auth_lockouts", schema=None) as batch_op:
        batch_op.alter_column("window_started_at", new_column_name="last_failure_at")
        batch_op.alter_column("locked_at", new_column_name="blocked_until")
    # a terminal locked by the old rule is simply free again: the new one never waits for staff
    op.execute("UPDATE auth_lockouts SET blocked_until = NULL, failures = 0")


def downgrade() -> None:
    with op.batch_alter_table("auth_lockouts", schema=None) as batch_op:
        batch_op.alter_column("last_failure_at", new_column_name="window_started_at")
        batch_op.alter_column("blocked_until", new_column_name="locked_at")
