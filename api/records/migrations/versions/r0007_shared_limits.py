"""Limits shared by studio replicas: request and sign-in failure counts per minute, the
queue slots of admitted jobs, revoked token-mode sessions.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "limit_counts",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("window", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_table(
        "queue_slots",
        sa.Column("job", sa.String(253), primary_key=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_queue_slots_owner_at", "queue_slots", ["owner", "at"])
    op.create_table(
        "revoked_sessions",
        sa.Column("sid", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_revoked_sessions_expires_at", "revoked_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_revoked_sessions_expires_at", "revoked_sessions")
    op.drop_table("revoked_sessions")
    op.drop_index("ix_queue_slots_owner_at", "queue_slots")
    op.drop_table("queue_slots")
    op.drop_table("limit_counts")
