"""The usage ledger: one row per finished job.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("job_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("job", sa.String(253), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("pool", sa.String(253), nullable=False),
        sa.Column("gpu", sa.String(128), nullable=False),
        sa.Column("instance", sa.String(253), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
    )
    op.create_index("ix_usage_owner", "usage", ["owner"])
    op.create_index("ix_usage_finished_at", "usage", ["finished_at"])
    op.create_index("ix_usage_day_owner_pool", "usage", ["day", "owner", "pool"])


def downgrade() -> None:
    op.drop_index("ix_usage_day_owner_pool", "usage")
    op.drop_index("ix_usage_finished_at", "usage")
    op.drop_index("ix_usage_owner", "usage")
    op.drop_table("usage")
