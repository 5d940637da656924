"""Two studio replicas on one PostgreSQL and one emulated API (T5): a user's limits hold
across them — requests per minute, unfinished jobs, failed sign-ins — and a session
signed out on one is refused by the other. Before, each replica counted in its own
memory: two replicas admitted twice the limit, and a stolen cookie stayed valid on the
replica that did not see the sign-out. Plus the shared stores themselves on both
backends (the atomic admission under concurrency)."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from recordsdb import pg_server, records_url  # noqa: F401  (fixtures)
from waiting import eventually

from warmpool.api.auth import SESSION_COOKIE
from warmpool.api.records.db import Database
from warmpool.api.records.shared import stores
from warmpool.operator.adapters import kube

NS = "default"
GOOD = {"pool": "sdxl", "prompt": "a lighthouse at dusk"}
STRONG = {
    "ada": "3f9c1a7be2d84c06a5b1e9f7d2c4a8b6e1f3d5c7a9b2e4f6",
    "bob": "b7e2a9c4f1d6e3b8a5c2f9d4e7b1a6c3f8d5e2b9a4c7f1d6",
}
Studio = Any
Driver = Any


@pytest.fixture
async def pg_url(pg_server: Any) -> str:  # noqa: F811
    import asyncpg

    name = f"t_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(pg_server.dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url: str = pg_server.url(name)
    return url


@pytest.fixture
async def replicas(studio: Studio, pg_url: str) -> Any:
    """``await replicas(**settings)`` → two studio apps on the same records database."""

    async def make(**settings: Any) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        a = await studio(studio_records_url=pg_url, **settings)
        b = await studio(studio_records_url=pg_url, **settings)
        return a, b

    return make


@pytest.fixture
async def tokens(kube_client: kube.KubeClient) -> dict[str, str]:
    data = {user: base64.b64encode(tok.encode()).decode() for user, tok in STRONG.items()}
    secret = {"metadata": {"name": "warmpool-studio-tokens"}, "type": "Opaque", "data": data}
    await kube_client.create(kube.SECRETS, secret, NS)
    return STRONG


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {STRONG[user]}"}


def alternate(a: Any, b: Any, n: int) -> list[Any]:
    return [a if i % 2 == 0 else b for i in range(n)]


async def test_the_request_limit_holds_across_replicas(replicas: Any, tokens: Any) -> None:
    a, b = await replicas(studio_auth="token", studio_requests_per_minute=7)
    answers = await asyncio.gather(
        *(http.get("/api/v1/me", headers=bearer("ada")) for http in alternate(a, b, 20))
    )
    codes = [r.status_code for r in answers]
    assert codes.count(200) == 7 and codes.count(429) == 13
    assert all(int(r.headers["Retry-After"]) >= 1 for r in answers if r.status_code == 429)
    assert (await b.get("/api/v1/me", headers=bearer("bob"))).status_code == 200  # per user


async def test_the_unfinished_jobs_limit_holds_across_replicas(
    replicas: Any, tokens: Any, drive: Driver
) -> None:
    a, b = await replicas(studio_auth="token", studio_max_queued_jobs=3)
    for http in (a, b):  # both watches synced: the common path, no listing
        hub = http.app.state.studio.hub  # type: ignore[attr-defined]
        await eventually(hub.synced.is_set, timeout=10, what="the replica's watch")
    answers = await asyncio.gather(
        *(
            http.post("/api/v1/generations", json=GOOD, headers=bearer("ada"))
            for http in alternate(a, b, 10)
        )
    )
    made = [r.json()["name"] for r in answers if r.status_code == 201]
    assert len(made) == 3
    assert sorted(r.status_code for r in answers) == [201] * 3 + [429] * 7
    # One ends: its place is free again on either replica.
    await drive.set_status(made[0], {"phase": "Failed", "message": "out of memory"})
    r = await b.post("/api/v1/generations", json=GOOD, headers=bearer("ada"))
    assert r.status_code == 201
    assert (
        await a.post("/api/v1/generations", json=GOOD, headers=bearer("ada"))
    ).status_code == 429


async def test_a_session_signed_out_on_one_replica_is_refused_by_the_other(
    replicas: Any, tokens: Any
) -> None:
    a, b = await replicas(studio_auth="token")
    assert (await a.post("/api/v1/session", json={"token": STRONG["ada"]})).status_code == 204
    cookie = {"Cookie": f"{SESSION_COOKIE}={a.cookies[SESSION_COOKIE]}"}
    assert (await b.get("/api/v1/me", headers=cookie)).status_code == 200
    assert (await a.delete("/api/v1/session")).status_code == 204
    assert (await b.get("/api/v1/me", headers=cookie)).status_code == 401
    assert (await a.get("/api/v1/me", headers=cookie)).status_code == 401


async def test_failed_sign_ins_count_across_replicas(replicas: Any, tokens: Any) -> None:
    a, b = await replicas(studio_auth="token", studio_signin_failures_per_minute=4)
    wrong = {"token": "x" * 48, "name": "ada"}
    for http in alternate(a, b, 4):
        assert (await http.post("/api/v1/session", json=wrong)).status_code == 401
    # The fifth try, with the right token, on either replica: blocked (address and name).
    for http in (a, b):
        r = await http.post("/api/v1/session", json={"token": STRONG["ada"], "name": "ada"})
        assert r.status_code == 429


# ---------------------------------------------------------------- the stores, both backends


async def test_the_shared_counters_admit_exactly_the_allowance_at_once(
    records_url: str,  # noqa: F811
) -> None:
    db = Database(records_url)
    try:
        await db.migrate()
        counters = stores(db, shared=True).counters
        taken = await asyncio.gather(*(counters.take("rate:ada", 100, 5) for _ in range(20)))
        assert sum(taken) == 5
        assert await counters.counts("rate:ada", (99, 100)) == (0, 5)
        await counters.add(["fail:x", "fail:y"], 101)  # a new window prunes the older ones
        assert await counters.counts("rate:ada", (99, 100)) == (0, 5)
        await counters.add(["fail:x"], 103)
        assert await counters.counts("rate:ada", (99, 100)) == (0, 0)
        assert await counters.counts("fail:x", (102, 103)) == (0, 1)
    finally:
        await db.close()


async def test_the_shared_slots_take_turns_per_user(records_url: str) -> None:  # noqa: F811
    db = Database(records_url)
    try:
        await db.migrate()
        store = stores(db, shared=True).slots
        now = datetime.now(UTC)

        async def count(recent: Collection[str]) -> int:
            await asyncio.sleep(0.01)  # as slow as a listing: the lock must hold
            return len(recent)

        admitted = await asyncio.gather(
            *(store.reserve("ada", f"j{i}", limit=2, count=count, now=now) for i in range(8))
        )
        assert sum(admitted) == 2
        first = next(f"j{i}" for i, ok in enumerate(admitted) if ok)
        await store.release(first)
        assert await store.reserve("ada", "j9", limit=2, count=count, now=now)
        assert not await store.reserve("ada", "j10", limit=2, count=count, now=now)
    finally:
        await db.close()
