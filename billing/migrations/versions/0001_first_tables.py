"""First tables: the whole ledger as of the first release.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 06:59:38.861801
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)

    op.create_table(
        "auth_lockouts",
        sa.Column("terminal", sa.String(length=63), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(), nullable=True),
        sa.Column("locked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("terminal", name=op.f("pk_auth_lockouts")),
    )
    op.create_table(
        "catalogue_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_items")),
        sa.UniqueConstraint("code", name=op.f("uq_catalogue_items_code")),
    )
    op.create_table(
        "categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("code", name=op.f("uq_categories_code")),
    )
    op.create_table(
        "inbox_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=63), nullable=False),
        sa.Column("stream", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_events")),
        sa.UniqueConstraint("agent", "stream", "seq", name=op.f("uq_inbox_events_agent")),
    )
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbox_events_session_id"), ["session_id"], unique=False
        )

    op.create_table(
        "materials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("diameter_um", sa.Integer(), nullable=False),
        sa.Column("density_mg_cm3", sa.Integer(), nullable=False),
        sa.Column("price_cents_per_kg", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_materials")),
        sa.UniqueConstraint("code", name=op.f("uq_materials_code")),
    )
    op.create_table(
        "rejected_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_messages")),
    )
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_users_username")),
    )
    op.create_table(
        "stream_positions",
        sa.Column("agent", sa.String(length=63), nullable=False),
        sa.Column("stream", sa.String(length=36), nullable=False),
        sa.Column("upto", sa.Integer(), nullable=False),
        sa.Column("highest", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("agent", "stream", name=op.f("pk_stream_positions")),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("company_name", sa.String(length=200), nullable=True),
        sa.Column("company_address", sa.Text(), nullable=True),
        sa.Column("siren", sa.String(length=14), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_customers_category_id_categories")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("ref", name=op.f("uq_customers_ref")),
    )
    op.create_table(
        "machines",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("agent", sa.String(length=63), nullable=True),
        sa.Column("material_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["material_id"], ["materials.id"], name=op.f("fk_machines_material_id_materials")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machines")),
    )
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_machines_agent"), ["agent"], unique=False)

    op.create_table(
        "tariffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_tariffs_category_id_categories")
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_tariffs_machine_id_machines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tariffs")),
        sa.UniqueConstraint("machine_id", "category_id", name=op.f("uq_tariffs_machine_id")),
    )
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("payment_method", sa.String(length=20), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_visits_category_id_categories")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_visits_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
    )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visits_state"), ["state"], unique=False)

    op.create_table(
        "credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("secret_hash", sa.String(length=200), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=True),
        sa.Column("offline_digest", sa.String(length=128), nullable=True),
        sa.Column("allowlist_salt", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", sa.DateTime(), nullable=True),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_credentials_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credentials_secret_hash"), ["secret_hash"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_credentials_visit_id"), ["visit_id"], unique=False)

    op.create_table(
        "tariff_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tariff_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.Column("unit_s", sa.Integer(), nullable=False),
        sa.Column("minimum_units", sa.Integer(), nullable=False),
        sa.Column("start_fee_cents", sa.Integer(), nullable=False),
        sa.Column("grace_s", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(length=10), nullable=False),
        sa.Column("material_applies", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["tariff_id"], ["tariffs.id"], name=op.f("fk_tariff_versions_tariff_id_tariffs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tariff_versions")),
        sa.UniqueConstraint("tariff_id", "version", name=op.f("uq_tariff_versions_tariff_id")),
    )
    op.create_table(
        "usage_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agent", sa.String(length=63), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("auth", sa.String(length=10), nullable=False),
        sa.Column("credential", sa.String(length=128), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=30), nullable=True),
        sa.Column("session_s", sa.Integer(), nullable=False),
        sa.Column("busy_s", sa.Integer(), nullable=False),
        sa.Column("job_s", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=500), nullable=True),
        sa.Column("job_state", sa.String(length=20), nullable=True),
        sa.Column("job_progress_milli", sa.Integer(), nullable=True),
        sa.Column("filament_mm_milli", sa.Integer(), nullable=False),
        sa.Column("material_code", sa.String(length=40), nullable=True),
        sa.Column("expected_end_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_usage_sessions_machine_id_machines")
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_usage_sessions_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_sessions")),
    )
    with op.batch_alter_table("usage_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_usage_sessions_machine_id"), ["machine_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_usage_sessions_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_usage_sessions_visit_id"), ["visit_id"], unique=False)

    op.create_table(
        "charge_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("quantity_milli", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("unit_price_millicents", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("tariff_version_id", sa.Integer(), nullable=True),
        sa.Column("catalogue_item_id", sa.Integer(), nullable=True),
        sa.Column("material_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["catalogue_item_id"],
            ["catalogue_items.id"],
            name=op.f("fk_charge_lines_catalogue_item_id_catalogue_items"),
        ),
        sa.ForeignKeyConstraint(
            ["material_id"], ["materials.id"], name=op.f("fk_charge_lines_material_id_materials")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["usage_sessions.id"],
            name=op.f("fk_charge_lines_session_id_usage_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["tariff_version_id"],
            ["tariff_versions.id"],
            name=op.f("fk_charge_lines_tariff_version_id_tariff_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_charge_lines_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charge_lines")),
    )
    with op.batch_alter_table("charge_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_charge_lines_session_id"), ["session_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_charge_lines_visit_id"), ["visit_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("charge_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_charge_lines_visit_id"))
        batch_op.drop_index(batch_op.f("ix_charge_lines_session_id"))

    op.drop_table("charge_lines")
    with op.batch_alter_table("usage_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_sessions_visit_id"))
        batch_op.drop_index(batch_op.f("ix_usage_sessions_state"))
        batch_op.drop_index(batch_op.f("ix_usage_sessions_machine_id"))

    op.drop_table("usage_sessions")
    op.drop_table("tariff_versions")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credentials_visit_id"))
        batch_op.drop_index(batch_op.f("ix_credentials_secret_hash"))

    op.drop_table("credentials")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visits_state"))

    op.drop_table("visits")
    op.drop_table("tariffs")
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_machines_agent"))

    op.drop_table("machines")
    op.drop_table("customers")
    op.drop_table("stream_positions")
    op.drop_table("staff_users")
    op.drop_table("rejected_messages")
    op.drop_table("materials")
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_events_session_id"))

    op.drop_table("inbox_events")
    op.drop_table("categories")
    op.drop_table("catalogue_items")
    op.drop_table("auth_lockouts")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_at")

    op.drop_table("audit_log")
