"""Accounts (OpenID Connect), their server-side sessions, pending sign-ins, and the
spending limits with their reservations.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("name", sa.String(320), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("groups", sa.Text(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("last_sign_in_at", When, nullable=False),
        sa.UniqueConstraint("issuer", "subject", name="uq_accounts_issuer_subject"),
    )
    op.create_table(
        "account_sessions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "account_id",
            sa.BigInteger(),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", When, nullable=False),
        sa.Column("last_seen_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("revoked_at", When, nullable=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(256), nullable=False),
    )
    op.create_index("ix_account_sessions_account_id", "account_sessions", ["account_id"])
    op.create_index("ix_account_sessions_expires_at", "account_sessions", ["expires_at"])
    op.create_table(
        "oidc_logins",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("verifier", sa.String(128), nullable=False),
        sa.Column("return_to", sa.String(512), nullable=False),
        sa.Column("expires_at", When, nullable=False),
    )
    op.create_index("ix_oidc_logins_expires_at", "oidc_logins", ["expires_at"])
    op.create_table(
        "spend_limits",
        sa.Column("owner", sa.String(320), primary_key=True),
        sa.Column("daily", sa.Float(), nullable=True),
        sa.Column("monthly", sa.Float(), nullable=True),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("updated_by", sa.String(320), nullable=False),
    )
    op.create_table(
        "spend_reservations",
        sa.Column("job", sa.String(253), primary_key=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("at", When, nullable=False),
    )
    op.create_index("ix_spend_reservations_owner_at", "spend_reservations", ["owner", "at"])


def downgrade() -> None:
    op.drop_index("ix_spend_reservations_owner_at", "spend_reservations")
    op.drop_table("spend_reservations")
    op.drop_table("spend_limits")
    op.drop_index("ix_oidc_logins_expires_at", "oidc_logins")
    op.drop_table("oidc_logins")
    op.drop_index("ix_account_sessions_expires_at", "account_sessions")
    op.drop_index("ix_account_sessions_account_id", "account_sessions")
    op.drop_table("account_sessions")
    op.drop_table("accounts")
