"""Qualifications (per machine or group, granted to a customer or for one supervised visit), out of
service, upkeep thresholds and the machine's service log; a customer's own badge.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qualifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qualifications")),
        sa.UniqueConstraint("code", name=op.f("uq_qualifications_code")),
    )
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("qualification_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("out_of_service_reason", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("out_of_service_since", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("service_every_h", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("service_every_jobs", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("service_every_m", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_machines_qualification_id_qualifications"), "qualifications", ["qualification_id"], ["id"]
        )
    with op.batch_alter_table("catalogue_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grants_qualification_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("grants_validity_days", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_catalogue_items_grants_qualification_id_qualifications"), "qualifications",
            ["grants_qualification_id"], ["id"],
        )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("badge_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_customers_badge_hash"), ["badge_hash"])
    op.create_table(
        "qualification_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("qualification_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.Column("granted_by", sa.String(length=80), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("line_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(["qualification_id"], ["qualifications.id"],
                                name=op.f("fk_qualification_grants_qualification_id_qualifications")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_qualification_grants_customer_id_customers")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_qualification_grants_visit_id_visits")),
        sa.ForeignKeyConstraint(["line_id"], ["charge_lines.id"],
                                name=op.f("fk_qualification_grants_line_id_charge_lines")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qualification_grants")),
    )  # fmt: skip
    op.create_index(op.f("ix_qualification_grants_customer_id"), "qualification_grants", ["customer_id"])
    op.create_index(op.f("ix_qualification_grants_visit_id"), "qualification_grants", ["visit_id"])
    op.create_table(
        "machine_services",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("by", sa.String(length=80), nullable=False),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("busy_s", sa.BigInteger(), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.Column("filament_mm_milli", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["machine_id"], ["machines.id"], name=op.f("fk_machine_services_machine_id_machines")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machine_services")),
    )
    op.create_index(op.f("ix_machine_services_machine_id"), "machine_services", ["machine_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_machine_services_machine_id"), table_name="machine_services")
    op.drop_table("machine_services")
    op.drop_index(op.f("ix_qualification_grants_visit_id"), table_name="qualification_grants")
    op.drop_index(op.f("ix_qualification_grants_customer_id"), table_name="qualification_grants")
    op.drop_table("qualification_grants")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_customers_badge_hash"), type_="unique")
        batch_op.drop_column("badge_hash")
    with op.batch_alter_table("catalogue_items", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_catalogue_items_grants_qualification_id_qualifications"),
                                 type_="foreignkey")  # fmt: skip
        batch_op.drop_column("grants_validity_days")
        batch_op.drop_column("grants_qualification_id")
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_machines_qualification_id_qualifications"), type_="foreignkey")
        for column in ("service_every_m", "service_every_jobs", "service_every_h", "out_of_service_since",
                       "out_of_service_reason", "qualification_id"):  # fmt: skip
            batch_op.drop_column(column)
    op.drop_table("qualifications")
