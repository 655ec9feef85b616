"""A document may get several credit notes (each for some of its lines), and a print job
records when a printer process claimed it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_documents_credit_note_of"), type_="unique")
        batch_op.create_index(
            batch_op.f("ix_documents_credit_note_of"), ["credit_note_of"], unique=False
        )
    with op.batch_alter_table("print_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("print_jobs", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_documents_credit_note_of"))
        batch_op.create_unique_constraint(
            batch_op.f("uq_documents_credit_note_of"), ["credit_note_of"]
        )
