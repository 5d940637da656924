"""The records database on SQLite and on a real PostgreSQL: migrations, the hash-chained
audit trail, retention, the usage ledger, Event ingestion. Every test runs on both."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from recordsdb import pg_server, records_url  # noqa: F401  (fixtures)
from sqlalchemy import Connection, inspect, text

from warmpool.api.records.audit import AuditTrail, Entry, Filter
from warmpool.api.records.db import Database
from warmpool.api.records.service import money_entry
from warmpool.api.records.tables import Base
from warmpool.api.records.usage import Ledger, usage_of

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(records_url: str) -> Any:  # noqa: F811
    database = Database(records_url)
    await database.migrate()
    yield database
    await database.close()


def tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_migrations_from_empty_match_the_models(records_url: str) -> None:  # noqa: F811
    database = Database(records_url)
    try:
        assert await database.revision() is None
        await database.migrate()
        assert await database.revision() == "0007"
        async with database.engine.connect() as conn:

            def diff(c: Connection) -> list[Any]:
                return list(compare_metadata(MigrationContext.configure(c), Base.metadata))

            assert await conn.run_sync(diff) == []
            assert {"audit", "audit_anchor", "usage", "meta"} <= await conn.run_sync(tables)
    finally:
        await database.close()


async def test_upgrade_from_the_previous_revision_keeps_records(
    records_url: str,  # noqa: F811
) -> None:
    database = Database(records_url)
    try:
        await database.migrate("0001")
        async with database.engine.connect() as conn:
            assert "usage" not in await conn.run_sync(tables)
        trail = AuditTrail(database, b"k")
        await trail.append(Entry("ada", "session.sign_in", address="10.0.0.1"))
        await database.migrate()  # 0001 → head, as a studio upgrade does at start-up
        assert await database.revision() == "0007"
        assert await Ledger(database).record(row("uid-1", "ada", 0.5)) is True
        rows, total = await trail.page(Filter())
        assert total == 1 and rows[0].actor == "ada"
        assert (await trail.verify()).ok
        await database.downgrade("0001")
        async with database.engine.connect() as conn:
            assert "usage" not in await conn.run_sync(tables)
        await database.downgrade("base")
        async with database.engine.connect() as conn:
            assert "audit" not in await conn.run_sync(tables)
        await database.migrate()
        assert await database.revision() == "0007"
    finally:
        await database.close()


async def test_the_chain_verifies_and_detects_alteration_and_removal(db: Database) -> None:
    trail = AuditTrail(db, b"key")
    for i in range(5):
        await trail.append(Entry("ada", "muse.create", "Muse", f"m{i}", detail={"i": i}))
    ok = await trail.verify()
    assert ok.ok and ok.checked == 5
    async with db.session() as s:
        await s.execute(text("UPDATE audit SET detail = '{\"i\": 99}' WHERE id = 3"))
    bad = await trail.verify()
    assert not bad.ok and bad.record_id == 3 and "altered" in bad.problem
    async with db.session() as s:
        await s.execute(text("DELETE FROM audit WHERE id = 3"))
    gone = await trail.verify()
    assert not gone.ok and gone.record_id == 4 and "removed" in gone.problem


async def test_retention_prunes_and_the_chain_stays_verifiable(db: Database) -> None:
    trail = AuditTrail(db, b"key")
    for days in (100, 95, 10, 1):
        await trail.append(Entry("bob", "generation.create", at=T0 - timedelta(days=days)))
    assert await trail.prune(timedelta(days=90), now=T0) == 2
    rows, total = await trail.page(Filter())
    assert total == 3 and rows[0].action == "audit.prune"
    v = await trail.verify()
    assert v.ok and v.anchored and v.checked == 3
    # removing the first kept record is still detected after the anchor
    async with db.session() as s:
        await s.execute(text("DELETE FROM audit WHERE id = 3"))
    assert not (await trail.verify()).ok


async def test_filters_pagination_and_fingerprints(db: Database) -> None:
    trail = AuditTrail(db, await db.fingerprint_key(None))
    for i in range(7):
        actor = "ada" if i % 2 else "bob"
        await trail.append(
            Entry(actor, "pool.pause", "GpuPool", "sdxl" if i < 4 else "flux",
                  at=T0 + timedelta(minutes=i))
        )  # fmt: skip
    rows, total = await trail.page(Filter(actor="ada"), offset=0, limit=2)
    assert total == 3 and [r.actor for r in rows] == ["ada", "ada"]
    rows, total = await trail.page(Filter(object="GpuPool/flux"))
    assert total == 3
    rows, total = await trail.page(
        Filter(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))
    )
    assert total == 2
    rows, total = await trail.page(Filter(action="pool."))
    assert total == 7
    key = await db.fingerprint_key(None)
    assert key == await db.fingerprint_key(None)  # kept in the database
    fp = trail.fingerprint("s3cret-token")
    assert fp == AuditTrail(db, key).fingerprint("s3cret-token") and "s3cret" not in fp
    assert fp != AuditTrail(db, b"other").fingerprint("s3cret-token")


def row(uid: str, owner: str, cost: float, *, day: int = 1, pool: str = "sdxl") -> dict[str, Any]:
    finished = datetime(2030, 1, day, 10, tzinfo=UTC)
    return {
        "job_uid": uid, "job": f"gen-{uid}", "namespace": "default", "owner": owner,
        "pool": pool, "gpu": "RTX 4090", "instance": "i-1", "phase": "Succeeded",
        "seconds": 12.5, "cost": cost, "finished_at": finished,
        "day": finished.strftime("%Y-%m-%d"),
    }  # fmt: skip


async def test_usage_is_written_once_per_job_and_summed(db: Database) -> None:
    ledger = Ledger(db)
    assert await ledger.record(row("u1", "ada", 0.25)) is True
    assert await ledger.record(row("u1", "ada", 0.25)) is False  # the same job again
    await ledger.record(row("u2", "ada", 0.5))
    await ledger.record(row("u3", "bob", 1.0, day=2, pool="flux"))
    spend = await ledger.spend(datetime(2029, 12, 1, tzinfo=UTC), datetime(2030, 2, 1, tzinfo=UTC))
    assert [(s.day, s.owner, s.pool, s.jobs, s.cost) for s in spend] == [
        ("2030-01-01", "ada", "sdxl", 2, 0.75),
        ("2030-01-02", "bob", "flux", 1, 1.0),
    ]
    assert await ledger.prune(timedelta(days=1), now=datetime(2030, 1, 2, 12, tzinfo=UTC)) == 2


def test_usage_of_a_finished_job() -> None:
    job = {
        "metadata": {"name": "gen-1", "namespace": "default", "uid": "abc"},
        "spec": {"pool": "sdxl", "prompt": "x", "owner": "ada"},
        "status": {"phase": "Succeeded", "startedAt": "2030-01-01T00:00:00Z",
                   "finishedAt": "2030-01-01T00:00:30Z", "gpuName": "RTX 4090",
                   "actualCost": 0.0042},
    }  # fmt: skip
    out = usage_of(job)
    assert out is not None
    assert (out["seconds"], out["cost"], out["owner"], out["day"]) == (
        30.0,
        0.0042,
        "ada",
        "2030-01-01",
    )
    job["status"]["phase"] = "Running"
    assert usage_of(job) is None
    assert usage_of(job, deleted=True)["phase"] == "Cancelled"  # type: ignore[index]
    del job["status"]["startedAt"]
    assert usage_of(job, deleted=True) is None  # never started: nothing spent


async def test_two_replicas_appending_at_once_keep_one_chain(records_url: str) -> None:  # noqa: F811
    """PostgreSQL serves several studio replicas: appends from two engines interleave into
    one valid chain (an advisory transaction lock). SQLite serves one replica only."""
    if not records_url.startswith("postgresql"):
        pytest.skip("SQLite serves one studio replica (the chart refuses more)")
    one, two = Database(records_url), Database(records_url)
    try:
        await one.migrate()
        await two.migrate()
        a, b = AuditTrail(one, b"k"), AuditTrail(two, b"k")
        await asyncio.gather(
            *(t.append(Entry(f"r{i}", "muse.create")) for i in range(20) for t in (a, b))
        )
        v = await a.verify()
        assert v.ok and v.checked == 40, v
    finally:
        await one.close()
        await two.close()


def event(reason: str, count: int = 1, uid: str = "ev-1") -> dict[str, Any]:
    return {
        "metadata": {"name": "sdxl-abc.1", "uid": uid},
        "involvedObject": {"kind": "GpuInstance", "name": "sdxl-abc"},
        "reason": reason,
        "message": "offer 7 as contract 42: RTX 4090, $0.412/h",
        "count": count,
        "source": {"component": "kopf"},
        "lastTimestamp": "2030-01-01T00:00:00Z",
    }


async def test_money_events_are_ingested_once_per_uid_and_count(db: Database) -> None:
    trail = AuditTrail(db, b"k")
    assert money_entry(event("HostCoolingDown")) is None
    entry = money_entry(event("Rented"))
    assert entry is not None and entry.detail and entry.detail["pricePerHour"] == 0.412
    assert await trail.append(entry) is not None
    assert await trail.append(money_entry(event("Rented"))) is None  # type: ignore[arg-type]
    assert await trail.append(money_entry(event("Rented", count=2))) is not None  # type: ignore[arg-type]
    rows, total = await trail.page(Filter(action="operator.rent"))
    assert total == 2 and rows[0].object_name == "sdxl-abc"


async def test_concurrent_appends_are_group_committed_in_one_valid_chain(db: Database) -> None:
    """Appends arriving together share transactions (fewer commits than records), each
    caller gets its own record back, and a source twice in one batch is recorded once."""
    trail = AuditTrail(db, b"k")
    commits = 0
    real_session = db.session

    def counting_session() -> Any:
        nonlocal commits
        commits += 1
        return real_session()

    db.session = counting_session  # type: ignore[method-assign]
    entries = [Entry(f"u{i}", "generation.create", "GenerationJob", f"g{i}") for i in range(60)]
    twice = [
        Entry("op", "operator.rent", source="ev-x"),
        Entry("op", "operator.rent", source="ev-x"),
    ]
    records = await asyncio.gather(*(trail.append(e) for e in [*entries, *twice]))
    db.session = real_session  # type: ignore[method-assign]
    assert [r.object_name for r in records[:60] if r is not None] == [f"g{i}" for i in range(60)]
    assert sum(r is None for r in records[60:]) == 1
    assert commits < 10, commits
    v = await trail.verify()
    assert v.ok and v.checked == 61, v
