"""Records benchmark: audit appends per second, chain verification speed, ledger writes.

For SQLite (a temp file) and PostgreSQL (a throw-away server from Debian's binaries, as
the tests start it; skipped when absent): N sequential appends (each its own transaction,
as a request makes one), N appends from C concurrent tasks, one full ``verify`` of the
chain, and N usage rows. Prints the figures and writes ``bench/results/records.json``.
No assertions.

    .venv/bin/python bench/records.py [--records 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warmpool.api.records.audit import AuditTrail, Entry
from warmpool.api.records.db import Database
from warmpool.api.records.usage import Ledger

HERE = Path(__file__).resolve().parent
# The throw-away PostgreSQL server of the tests (tests/support/pgserver.py).
sys.path.insert(0, str(HERE.parent / "tests" / "support"))
import pgserver  # noqa: E402


async def measure(url: str, n: int, concurrency: int) -> dict[str, Any]:
    db = Database(url)
    t = time.perf_counter()
    await db.migrate()
    migrate_s = time.perf_counter() - t
    trail = AuditTrail(db, b"bench-key")
    t = time.perf_counter()
    for i in range(n):
        await trail.append(Entry("ada", "generation.create", "GenerationJob", f"gen-{i}",
                                 address="10.0.0.1", detail={"pool": "sdxl"}))  # fmt: skip
    seq = n / (time.perf_counter() - t)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await trail.append(Entry("bob", "muse.create", "Muse", f"m-{i}"))

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    conc = n / (time.perf_counter() - t)
    t = time.perf_counter()
    verdict = await trail.verify()
    verify_s = time.perf_counter() - t
    ledger = Ledger(db)
    now = datetime.now(UTC)
    t = time.perf_counter()
    for i in range(n):
        await ledger.record({
            "job_uid": secrets.token_hex(8), "job": f"gen-{i}", "namespace": "default",
            "owner": "ada", "pool": "sdxl", "gpu": "RTX 4090", "instance": "i",
            "phase": "Succeeded",
            "seconds": 10.0, "cost": 0.01, "finished_at": now, "day": now.strftime("%Y-%m-%d"),
        })  # fmt: skip
    usage = n / (time.perf_counter() - t)
    await db.close()
    return {
        "migrate_seconds": round(migrate_s, 3),
        "appends_per_second_sequential": round(seq, 1),
        f"appends_per_second_{concurrency}_concurrent": round(conc, 1),
        "verify_seconds": round(verify_s, 3),
        "verify_records_per_second": round(verdict.checked / verify_s, 1),
        "verified_ok": verdict.ok,
        "usage_rows_per_second": round(usage, 1),
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    results: dict[str, Any] = {"records": args.records}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = await measure(
            f"sqlite+aiosqlite:///{tmp}/bench.db", args.records, args.concurrency
        )
    if pgserver.MISSING:
        print("PostgreSQL skipped:", pgserver.WHY_MISSING)
    else:
        server = pgserver.start()
        try:
            import asyncpg

            conn = await asyncpg.connect(server.dsn())
            await conn.execute('CREATE DATABASE "bench"')
            await conn.close()
            results["postgresql"] = await measure(
                server.url("bench"), args.records, args.concurrency
            )
        finally:
            pgserver.stop(server)
    for backend in ("sqlite", "postgresql"):
        if backend in results:
            print(f"{backend}:")
            for k, v in results[backend].items():
                print(f"  {k:40s} {v}")
    if "postgresql" in results:
        ratio = (
            results["postgresql"]["appends_per_second_sequential"]
            / results["sqlite"]["appends_per_second_sequential"]
        )
        results["ratio_pg_to_sqlite_sequential_appends"] = round(ratio, 2)
        print(f"PostgreSQL / SQLite sequential appends: {ratio:.2f}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "records.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
