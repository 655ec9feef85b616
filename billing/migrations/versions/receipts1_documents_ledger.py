"""Receipts, invoices and credit notes, their hash chains, closures and print jobs.

Revision ID: receipts1
Revises: 0002
Create Date: 2026-11-26 07:06:58.852881
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "receipts1"
down_revision = "0002"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
# frozen here (not imported) so this revision never changes with the code
CHAINS = {"R": "receipt", "F": "invoice", "A": "credit_note", "Z-DAY": "day", "Z-MONTH": "month"}


def upgrade() -> None:
    op.create_table(
        "closures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=False),
        sa.Column("closed_by", sa.String(length=80), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("grand_total_cents", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_closures")),
        sa.UniqueConstraint("hash", name=op.f("uq_closures_hash")),
        sa.UniqueConstraint("kind", "period", name=op.f("uq_closures_kind")),
    )
    chains = op.create_table(
        "ledger_chains",
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_ledger_chains")),
    )
    # every chain exists from the start: numbering only ever locks and updates its row
    op.bulk_insert(
        chains,
        [
            {"code": code, "kind": kind, "last_number": 0, "last_hash": GENESIS}
            for code, kind in CHAINS.items()
        ],
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series", sa.String(length=10), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("customer_ref", sa.String(length=20), nullable=True),
        sa.Column("payment_method", sa.String(length=20), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("credit_note_of", sa.Integer(), nullable=True),
        sa.Column("issued_by", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["credit_note_of"], ["documents.id"], name=op.f("fk_documents_credit_note_of_documents")
        ),
        sa.ForeignKeyConstraint(
            ["series"], ["ledger_chains.code"], name=op.f("fk_documents_series_ledger_chains")
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_documents_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("credit_note_of", name=op.f("uq_documents_credit_note_of")),
        sa.UniqueConstraint("hash", name=op.f("uq_documents_hash")),
        sa.UniqueConstraint("series", "number", name=op.f("uq_documents_series")),
    )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_documents_issued_at"), ["issued_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_documents_visit_id"), ["visit_id"], unique=False)

    op.create_table(
        "print_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("copy", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("printed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_print_jobs_document_id_documents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_print_jobs")),
        sa.UniqueConstraint("document_id", "copy", name=op.f("uq_print_jobs_document_id")),
    )
    with op.batch_alter_table("print_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_print_jobs_document_id"), ["document_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_print_jobs_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("print_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_print_jobs_status"))
        batch_op.drop_index(batch_op.f("ix_print_jobs_document_id"))

    op.drop_table("print_jobs")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_documents_visit_id"))
        batch_op.drop_index(batch_op.f("ix_documents_issued_at"))

    op.drop_table("documents")
    op.drop_table("ledger_chains")
    op.drop_table("closures")
