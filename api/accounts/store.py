"""Accounts, server-side sessions and pending sign-ins in the records database.

Secrets are stored hashed: a session cookie value and a sign-in ``state`` are random
256-bit strings, and only their SHA-256 is kept, so a copy of the database opens no session.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update

from warmpool.api.records.audit import utc
from warmpool.api.records.db import Database
from warmpool.api.records.tables import Account, AccountSession, OidcLogin

#: ``last_seen_at`` is written at most this often per session (not on every request).
SEEN_EVERY = timedelta(seconds=60)


class NameTakenError(Exception):
    """Another account (another issuer/subject) already has this user name."""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Pending:
    nonce: str
    verifier: str
    return_to: str


@dataclass(frozen=True)
class Identity:
    """What a verified ID token says about the person."""

    issuer: str
    subject: str
    name: str
    email: str
    groups: tuple[str, ...]
    admin: bool


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------ pending sign-ins

    async def start_login(
        self, state: str, pending: Pending, *, ttl: timedelta, now: datetime | None = None
    ) -> None:
        at = utc(now or now_utc())
        async with self.db.session() as s:
            await s.execute(delete(OidcLogin).where(OidcLogin.expires_at < at))
            s.add(
                OidcLogin(
                    state_hash=digest(state),
                    nonce=pending.nonce,
                    verifier=pending.verifier,
                    return_to=pending.return_to,
                    expires_at=at + ttl,
                )
            )

    async def take_login(self, state: str, *, now: datetime | None = None) -> Pending | None:
        """The pending sign-in of ``state``, removed (a state is used once), or None
        when unknown or expired."""
        async with self.db.session() as s:
            row = await s.get(OidcLogin, digest(state))
            if row is None:
                return None
            await s.delete(row)
            if utc(row.expires_at) < utc(now or now_utc()):
                return None
            return Pending(nonce=row.nonce, verifier=row.verifier, return_to=row.return_to)

    # ------------------------------------------------------------ accounts

    async def sign_up_or_in(
        self, who: Identity, *, now: datetime | None = None
    ) -> tuple[Account, bool]:
        """The account of (issuer, subject), created on the first sign-in (then True); its
        name, e-mail, groups and admin flag follow the latest ID token."""
        at = utc(now or now_utc())
        async with self.db.session() as s:
            account = await s.scalar(
                select(Account).where(Account.issuer == who.issuer, Account.subject == who.subject)
            )
            holder = await s.scalar(select(Account).where(Account.name == who.name))
            if holder is not None and holder is not account:
                raise NameTakenError(who.name)
            created = account is None
            if account is None:
                account = Account(issuer=who.issuer, subject=who.subject, created_at=at)
                s.add(account)
            account.name = who.name
            account.email = who.email
            account.groups = json.dumps(sorted(who.groups))
            account.admin = who.admin
            account.last_sign_in_at = at
        return account, created

    async def account(self, account_id: int) -> Account | None:
        async with self.db.session() as s:
            return await s.get(Account, account_id)

    # ------------------------------------------------------------ sessions

    async def open_session(
        self,
        account_id: int,
        *,
        lifetime: timedelta,
        address: str,
        user_agent: str,
        id_token: str | None = None,
        now: datetime | None = None,
    ) -> str:
        """A new session; returns the cookie value (only its hash is stored). ``id_token``
        is kept for the provider's sign-out."""
        at = utc(now or now_utc())
        token = secrets.token_urlsafe(32)
        async with self.db.session() as s:
            await s.execute(delete(AccountSession).where(AccountSession.expires_at < at))
            s.add(
                AccountSession(
                    token_hash=digest(token),
                    account_id=account_id,
                    created_at=at,
                    last_seen_at=at,
                    expires_at=at + lifetime,
                    address=address[:64],
                    user_agent=user_agent[:256],
                    id_token=id_token,
                )
            )
        return token

    async def session_of(
        self, token: str, *, now: datetime | None = None
    ) -> tuple[Account, AccountSession] | None:
        """The live session of a cookie value and its account (None: unknown, expired,
        revoked)."""
        at = utc(now or now_utc())
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(AccountSession, Account)
                    .join(Account, Account.id == AccountSession.account_id)
                    .where(AccountSession.token_hash == digest(token))
                )
            ).first()
            if row is None:
                return None
            session, account = row
            if session.revoked_at is not None or utc(session.expires_at) <= at:
                return None
            if at - utc(session.last_seen_at) > SEEN_EVERY:
                session.last_seen_at = at
            return account, session

    async def sessions(
        self, account_id: int, *, now: datetime | None = None
    ) -> Sequence[AccountSession]:
        """The account's live sessions, newest first."""
        at = utc(now or now_utc())
        async with self.db.session() as s:
            rows = await s.scalars(
                select(AccountSession)
                .where(
                    AccountSession.account_id == account_id,
                    AccountSession.revoked_at.is_(None),
                    AccountSession.expires_at > at,
                )
                .order_by(AccountSession.created_at.desc(), AccountSession.id.desc())
            )
            return list(rows)

    async def revoke(self, account_id: int, session_id: int) -> bool:
        """Revoke one of the account's sessions; False when it has no such live session."""
        async with self.db.session() as s:
            result = await s.execute(
                update(AccountSession)
                .where(
                    AccountSession.id == session_id,
                    AccountSession.account_id == account_id,
                    AccountSession.revoked_at.is_(None),
                )
                .values(revoked_at=now_utc(), id_token=None)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_token(self, token: str) -> str | None:
        """End the live session of a cookie value; returns its ID token (None: no such live
        session, or none was kept), which the session no longer holds."""
        async with self.db.session() as s:
            session = await s.scalar(
                select(AccountSession).where(
                    AccountSession.token_hash == digest(token),
                    AccountSession.revoked_at.is_(None),
                )
            )
            if session is None:
                return None
            id_token, session.id_token = session.id_token, None
            session.revoked_at = now_utc()
            return id_token
