"""The gallery's per-user data: favourites and ratings, albums, share links.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gallery_mark",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("job", sa.String(253), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("favourite", sa.Boolean(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("updated_at", When, nullable=False),
        sa.UniqueConstraint("owner", "job", "idx", name="uq_gallery_mark"),
    )
    op.create_index("ix_gallery_mark_owner", "gallery_mark", ["owner"])
    op.create_index("ix_gallery_mark_job", "gallery_mark", ["job"])
    op.create_table(
        "album",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.UniqueConstraint("owner", "name", name="uq_album_owner_name"),
    )
    op.create_index("ix_album_owner", "album", ["owner"])
    op.create_table(
        "album_item",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("album_id", sa.BigInteger(), nullable=False),
        sa.Column("job", sa.String(253), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("added_at", When, nullable=False),
        sa.UniqueConstraint("album_id", "job", "idx", name="uq_album_item"),
    )
    op.create_index("ix_album_item_album_id", "album_item", ["album_id"])
    op.create_index("ix_album_item_job", "album_item", ["job"])
    op.create_table(
        "share_link",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("job", sa.String(253), nullable=True),
        sa.Column("idx", sa.Integer(), nullable=True),
        sa.Column("album_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("revoked_at", When, nullable=True),
    )
    op.create_index("ix_share_link_owner", "share_link", ["owner"])
    op.create_index("ix_share_link_job", "share_link", ["job"])
    op.create_index("ix_share_link_album_id", "share_link", ["album_id"])


def downgrade() -> None:
    for table, columns in (
        ("share_link", ("album_id", "job", "owner")),
        ("album_item", ("job", "album_id")),
        ("album", ("owner",)),
        ("gallery_mark", ("job", "owner")),
    ):
        for column in columns:
            op.drop_index(f"ix_{table}_{column}", table)
        op.drop_table(table)
