"""The accounts store on SQLite and on a real PostgreSQL: accounts by (issuer, subject),
names unique across accounts, sessions stored hashed, expired and revoked sessions refused,
a pending sign-in used once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from recordsdb import pg_server, records_url  # noqa: F401  (fixtures)
from sqlalchemy import select

from warmpool.api.accounts.store import Identity, NameTakenError, Pending, Store, digest
from warmpool.api.records.audit import utc
from warmpool.api.records.db import Database
from warmpool.api.records.tables import AccountSession

ADA = Identity(issuer="https://id.test", subject="s-ada", name="ada@example.test",
               email="ada@example.test", groups=("staff",), admin=False)  # fmt: skip


@pytest.fixture
async def store(records_url: str) -> Any:  # noqa: F811
    db = Database(records_url)
    await db.migrate()
    yield Store(db)
    await db.close()


async def test_accounts_follow_the_latest_token_and_names_stay_unique(store: Store) -> None:
    first, created = await store.sign_up_or_in(ADA)
    again, created_again = await store.sign_up_or_in(
        Identity(**{**ADA.__dict__, "groups": ("staff", "warmpool-admins"), "admin": True})
    )
    assert created and not created_again
    assert again.id == first.id and again.admin and utc(again.created_at) == utc(first.created_at)
    # Another subject (or issuer) claiming the same name is refused, not merged.
    with pytest.raises(NameTakenError):
        await store.sign_up_or_in(Identity(**{**ADA.__dict__, "subject": "s-mallory"}))
    with pytest.raises(NameTakenError):
        await store.sign_up_or_in(Identity(**{**ADA.__dict__, "issuer": "https://evil.test"}))


async def test_sessions_are_hashed_expire_and_are_revocable(store: Store) -> None:
    account, _ = await store.sign_up_or_in(ADA)
    now = datetime(2031, 1, 1, tzinfo=UTC)
    life = timedelta(hours=1)
    a = await store.open_session(account.id, lifetime=life, address="10.0.0.1",
                                 user_agent="x" * 999, now=now)  # fmt: skip
    b = await store.open_session(account.id, lifetime=life, address="10.0.0.2",
                                 user_agent="y", now=now)  # fmt: skip
    async with store.db.session() as s:
        hashes = set(await s.scalars(select(AccountSession.token_hash)))
    assert hashes == {digest(a), digest(b)} and a not in hashes
    found = await store.session_of(a, now=now + timedelta(minutes=5))
    assert found is not None and found[0].name == "ada@example.test"
    assert await store.session_of(a, now=now + life) is None  # expired
    assert await store.session_of("not-a-session", now=now) is None
    live = await store.sessions(account.id, now=now)
    assert sorted(len(s.user_agent) for s in live) == [1, 256]
    other = next(s for s in live if s.address == "10.0.0.2")
    assert await store.revoke(account.id, other.id)
    assert not await store.revoke(account.id, other.id)
    assert not await store.revoke(account.id + 1, live[0].id)  # not theirs
    assert await store.session_of(b, now=now) is None
    await store.revoke_token(a)
    assert await store.session_of(a, now=now) is None


async def test_a_pending_sign_in_is_used_once_and_expires(store: Store) -> None:
    now = datetime(2031, 1, 1, tzinfo=UTC)
    pending = Pending(nonce="n", verifier="v", return_to="/#gallery")
    await store.start_login("state-1", pending, ttl=timedelta(minutes=10), now=now)
    await store.start_login("state-2", pending, ttl=timedelta(minutes=10), now=now)
    assert await store.take_login("state-1", now=now) == pending
    assert await store.take_login("state-1", now=now) is None
    assert await store.take_login("state-2", now=now + timedelta(minutes=11)) is None
