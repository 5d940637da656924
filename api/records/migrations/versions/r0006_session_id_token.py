"""The ID token of each account session, for the provider's sign-out (RP-initiated logout
sends it back as ``id_token_hint``); cleared when the session ends.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_sessions") as batch:
        batch.add_column(sa.Column("id_token", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_sessions") as batch:
        batch.drop_column("id_token")
