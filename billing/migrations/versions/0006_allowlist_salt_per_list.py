"""Allow-lists get a fresh salt each: credentials keep a sealed secret instead of one digest,
and every published entry is recorded so an offline acceptance can be matched to it.

The old ``offline_digest`` (PBKDF2 under one salt for the whole site) is dropped: one table of
10^6 digests reversed every PIN in it. Credentials made before this revision have no sealed
secret, so they work online only until their visit closes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_secret", sa.String(length=200), nullable=True))
        batch_op.drop_column("offline_digest")
        batch_op.drop_column("allowlist_salt")
    op.create_table(
        "allowlist_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=63), nullable=False),
        sa.Column("digest", sa.String(length=128), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("machines", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["credential_id"], ["credentials.id"],
                                name=op.f("fk_allowlist_grants_credential_id_credentials")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_allowlist_grants_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allowlist_grants")),
    )  # fmt: skip
    with op.batch_alter_table("allowlist_grants", schema=None) as batch_op:
        batch_op.create_index("ix_allowlist_grants_agent_digest", ["agent", "digest"], unique=False)
        batch_op.create_index(batch_op.f("ix_allowlist_grants_visit_id"), ["visit_id"], unique=False)


def downgrade() -> None:
    op.drop_table("allowlist_grants")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("allowlist_salt", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("offline_digest", sa.String(length=128), nullable=True))
        batch_op.drop_column("sealed_secret")
