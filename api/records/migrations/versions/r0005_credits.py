"""The prepaid-credit ledger (payments through Stripe).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "credit_entries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("key", sa.String(300), nullable=False, unique=True),
        sa.Column("job", sa.String(253), nullable=False),
        sa.Column("payment_intent", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_credit_entries_owner", "credit_entries", ["owner"])
    op.create_index("ix_credit_entries_at", "credit_entries", ["at"])


def downgrade() -> None:
    op.drop_index("ix_credit_entries_at", "credit_entries")
    op.drop_index("ix_credit_entries_owner", "credit_entries")
    op.drop_table("credit_entries")
