"""The records database: the async engine, start-up migrations and database facts.

``sqlite+aiosqlite:///path`` (the embedded default, one studio replica) or
``postgresql+asyncpg://user:password@host/db`` (production). The URL is a secret (it
may carry a password): it never appears in logs or errors, only the backend's name.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from warmpool.api.records.tables import Meta

#: Connections kept open to an SQLite file (each is a thread of aiosqlite).
SQLITE_POOL_SIZE = 20
#: Any constant: PostgreSQL advisory lock held while migrating (replicas start at once).
MIGRATION_LOCK = 0x7761726D


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("warmpool.api.records") / "migrations")
    )
    return cfg


class Database:
    """One engine and session factory for the studio's records."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.backend = parsed.get_backend_name()
        if self.backend == "sqlite" and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if self.backend == "sqlite":
            # A file: no server to lose a connection, so no ping per checkout; and enough
            # pooled connections for a burst of submissions (an overflow connection is
            # opened, with its thread, and closed again for every session past the pool).
            options: dict[str, Any] = {"pool_size": SQLITE_POOL_SIZE}
        else:
            options = {"pool_pre_ping": True}
        self.engine: AsyncEngine = create_async_engine(parsed, **options)
        if self.backend == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        #: Serializes appends to the hash chain inside this process (PostgreSQL adds a
        #: transaction lock across replicas; SQLite is one replica by the chart's rule).
        self.write_lock = asyncio.Lock()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as s, s.begin():
            yield s

    async def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (Alembic), under a lock on PostgreSQL."""
        async with self.engine.begin() as conn:
            if self.backend == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            await conn.run_sync(_upgrade, revision)

    async def downgrade(self, revision: str) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(_downgrade, revision)

    async def revision(self) -> str | None:
        async with self.engine.connect() as conn:
            return await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )

    async def fact(self, key: str, default: str) -> str:
        """A stored fact, created with ``default`` when missing (first writer wins)."""
        async with self.session() as s:
            found = await s.scalar(select(Meta.value).where(Meta.key == key))
            if found is not None:
                return found
            s.add(Meta(key=key, value=default))
        async with self.session() as s:
            return str(await s.scalar(select(Meta.value).where(Meta.key == key)))

    async def fingerprint_key(self, configured: str | None) -> bytes:
        if configured:
            return configured.encode()
        return (await self.fact("fingerprint_key", secrets.token_hex(32))).encode()

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # WAL + NORMAL: a commit survives a crash of the studio; only a power cut may lose
    # the last ones. FULL (an fsync per append) made appends ~5x slower here.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _upgrade(conn: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def _downgrade(conn: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.downgrade(cfg, revision)
