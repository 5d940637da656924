"""Fixtures of the records tests: one database URL per backend, fresh for every test.

``records_url`` is parametrized over SQLite (a file in the test's temp dir) and a real
PostgreSQL server (:mod:`pgserver`, one per test session, a new database per test), so
every test that takes it runs against both.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pgserver
import pytest


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PgServer]:
    if pgserver.MISSING:
        pytest.skip(pgserver.WHY_MISSING)
    server = pgserver.start()
    try:
        yield server
    finally:
        pgserver.stop(server)


@pytest.fixture(params=["sqlite", "postgresql"])
async def records_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/records.db"
    import asyncpg

    server: pgserver.PgServer = request.getfixturevalue("pg_server")
    name = f"t_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.url(name)
