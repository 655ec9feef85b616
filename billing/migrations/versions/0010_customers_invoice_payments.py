"""Customers are people or companies with a full postal address and VAT number; an invoice
issued unpaid gets its payment recorded later.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="person"))
        batch_op.add_column(sa.Column("postcode", sa.String(10), nullable=True))
        batch_op.add_column(sa.Column("city", sa.String(100), nullable=True))
        batch_op.add_column(sa.Column("country", sa.String(2), nullable=True))
        batch_op.add_column(sa.Column("vat_number", sa.String(20), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE customers SET kind = 'company' WHERE company_name IS NOT NULL OR siren IS NOT NULL")
    op.create_table(
        "invoice_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(80), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], name=op.f("fk_invoice_payments_document_id_documents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_payments")),
        sa.UniqueConstraint("document_id", name=op.f("uq_invoice_payments_document_id")),
    )
    op.create_index(op.f("ix_invoice_payments_paid_on"), "invoice_payments", ["paid_on"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_invoice_payments_paid_on"), table_name="invoice_payments")
    op.drop_table("invoice_payments")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for column in ("updated_at", "vat_number", "country", "city", "postcode", "kind"):
            batch_op.drop_column(column)
