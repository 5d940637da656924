"""The tables of the records database (SQLAlchemy 2 declarative models).

The migrations in ``migrations/versions`` create exactly these; a test compares them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class AuditRecord(Base):
    """One append-only audit entry. ``hash`` covers every other column and ``prev_hash``
    (the previous entry's ``hash``), so a removed or altered entry breaks the chain."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(320), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_kind: Mapped[str] = mapped_column(String(64), default="")
    object_name: Mapped[str] = mapped_column(String(253), default="", index=True)
    address: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    #: Canonical JSON (sorted keys): before/after, reasons, fingerprints. Never a secret.
    detail: Mapped[str] = mapped_column(Text, default="{}")
    #: De-duplication key of ingested records (Kubernetes Event uid:count), unique.
    source: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditAnchor(Base):
    """Where the verifiable chain starts after a retention clean-up: the hash the first
    remaining record must carry as ``prev_hash`` (one row per clean-up, newest wins)."""

    __tablename__ = "audit_anchor"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_id: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    removed: Mapped[int] = mapped_column(Integer)


class UsageRecord(Base):
    """One finished job: who, where, how long, what it cost. One row per job uid."""

    __tablename__ = "usage"
    __table_args__ = (Index("ix_usage_day_owner_pool", "day", "owner", "pool"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job_uid: Mapped[str] = mapped_column(String(64), unique=True)
    job: Mapped[str] = mapped_column(String(253))
    namespace: Mapped[str] = mapped_column(String(63))
    owner: Mapped[str] = mapped_column(String(320), index=True)
    pool: Mapped[str] = mapped_column(String(253))
    gpu: Mapped[str] = mapped_column(String(128), default="")
    instance: Mapped[str] = mapped_column(String(253), default="")
    phase: Mapped[str] = mapped_column(String(16))
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: UTC day of ``finished_at`` (YYYY-MM-DD): grouping the same way on every backend.
    day: Mapped[str] = mapped_column(String(10))


class Meta(Base):
    """Small key/value facts of the database (the generated fingerprint key)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# ---------------------------------------------------------------- the gallery (r0003)


class GalleryMark(Base):
    """A user's favourite flag and 1–5 rating of one output (job, index)."""

    __tablename__ = "gallery_mark"
    __table_args__ = (UniqueConstraint("owner", "job", "idx", name="uq_gallery_mark"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(320), index=True)
    job: Mapped[str] = mapped_column(String(253), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    favourite: Mapped[bool] = mapped_column(Boolean, default=False)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Album(Base):
    """A user-made collection of outputs."""

    __tablename__ = "album"
    __table_args__ = (UniqueConstraint("owner", "name", name="uq_album_owner_name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlbumItem(Base):
    """One output in one album."""

    __tablename__ = "album_item"
    __table_args__ = (UniqueConstraint("album_id", "job", "idx", name="uq_album_item"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    album_id: Mapped[int] = mapped_column(BigInteger, index=True)
    job: Mapped[str] = mapped_column(String(253), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ShareLink(Base):
    """A read-only link to one output or one album: expires, and can be revoked.
    ``id`` is random and travels signed (:mod:`warmpool.api.shares`)."""

    __tablename__ = "share_link"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(320), index=True)
    job: Mapped[str | None] = mapped_column(String(253), nullable=True, index=True)
    idx: Mapped[int | None] = mapped_column(Integer, nullable=True)
    album_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# ---------------------------------------------------------------- accounts (api/accounts/)


class Account(Base):
    """A person signed up through OpenID Connect: one row per (issuer, subject), created on
    the first sign-in. ``name`` is the studio user name (the configured claim, e.g. e-mail)."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_accounts_issuer_subject"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(320), unique=True)
    email: Mapped[str] = mapped_column(String(320), default="")
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    #: JSON list of the groups of the last sign-in.
    groups: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_sign_in_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AccountSession(Base):
    """A server-side sign-in session. The cookie holds a random value; only its SHA-256 is
    stored, so the table does not hold usable sessions."""

    __tablename__ = "account_sessions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(256), default="")
    #: The provider's ID token of this sign-in, sent back as ``id_token_hint`` at sign-out
    #: (RP-initiated logout); cleared when the session ends.
    id_token: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)


class OidcLogin(Base):
    """An authorization request under way: its state (hashed), nonce and PKCE verifier,
    used once by the callback and removed."""

    __tablename__ = "oidc_logins"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128))
    verifier: Mapped[str] = mapped_column(String(128))
    return_to: Mapped[str] = mapped_column(String(512), default="/")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SpendLimit(Base):
    """An admin's override of a user's dollar limits (None = the settings' default)."""

    __tablename__ = "spend_limits"

    owner: Mapped[str] = mapped_column(String(320), primary_key=True)
    daily: Mapped[float | None] = mapped_column(Float, nullable=True)
    monthly: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(320), default="")


class SpendReservation(Base):
    """A submitted job's estimate held against its owner's limits until the job's usage
    row (its actual cost) exists: then the reservation no longer counts."""

    __tablename__ = "spend_reservations"
    __table_args__ = (Index("ix_spend_reservations_owner_at", "owner", "at"),)

    job: Mapped[str] = mapped_column(String(253), primary_key=True)
    owner: Mapped[str] = mapped_column(String(320))
    amount: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CreditEntry(Base):
    """One entry of the prepaid-credit ledger (payments on): a purchase (+), a generation
    debit (−, its estimate × markup at submission), its settlement at the actual cost × markup,
    or the refund of a failed job (+). A user's balance is the sum of their entries; none is
    stored. ``key`` is unique: the Stripe event id of a purchase, ``debit:<job>`` etc., so
    each event or job is applied once."""

    __tablename__ = "credit_entries"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(320), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[float] = mapped_column(Float)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    job: Mapped[str] = mapped_column(String(253), default="")
    payment_intent: Mapped[str] = mapped_column(String(128), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LimitCount(Base):
    """Requests (or failed sign-ins) counted per key and window of one minute, shared by
    every studio replica (``api/records/shared.py``). ``window`` is the Unix minute."""

    __tablename__ = "limit_counts"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, default=0)


class QueueSlot(Base):
    """A job some replica admitted for its owner (named before it is created), counted
    against the owner's unfinished-jobs limit until every replica's watch has seen it."""

    __tablename__ = "queue_slots"
    __table_args__ = (Index("ix_queue_slots_owner_at", "owner", "at"),)

    job: Mapped[str] = mapped_column(String(253), primary_key=True)
    owner: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RevokedSession(Base):
    """A signed-out token-mode session id, refused by every replica until it expires."""

    __tablename__ = "revoked_sessions"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
