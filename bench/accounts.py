"""Accounts benchmark: what oidc mode and the spending limits add per request.

On SQLite (a temp file): N session look-ups (every authenticated request in oidc mode
makes one), N limit checks with a reservation (every submission under a limit), N credit
debits (every submission with payments on), each against a bare ``SELECT 1`` transaction
measured in the same run (the reference: the ratio is what the query costs beyond the
database round trip). Prints the figures and writes ``bench/results/accounts.json``.
No assertions.

    .venv/bin/python bench/accounts.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from warmpool.api.accounts.credits import Credits
from warmpool.api.accounts.limits import Spending
from warmpool.api.accounts.store import Identity, Store
from warmpool.api.records.db import Database

HERE = Path(__file__).resolve().parent


async def per_op(n: int, op: Any) -> float:
    t = time.perf_counter()
    for i in range(n):
        await op(i)
    return (time.perf_counter() - t) / n * 1000


async def measure(url: str, n: int) -> dict[str, Any]:
    db = Database(url)
    await db.migrate()
    store = Store(db)
    account, _ = await store.sign_up_or_in(
        Identity("https://id.test", "s", "ada@example.test", "ada@example.test", (), False)
    )
    tokens = [
        await store.open_session(account.id, lifetime=timedelta(hours=1), address="", user_agent="")
        for _ in range(50)
    ]

    async def select_one(_: int) -> None:
        async with db.session() as s:
            await s.execute(text("SELECT 1"))

    async def lookup(i: int) -> None:
        assert await store.session_of(tokens[i % len(tokens)]) is not None

    spending = Spending(db, daily=1e9, monthly=None)

    async def reserve(i: int) -> None:
        await spending.bind(await spending.reserve("ada@example.test", 0.001), f"gen-{i}")

    credits = Credits(db, markup=1.25)
    await credits.purchase("evt_bench", "ada@example.test", 1e9, "pi_bench")

    async def debit(i: int) -> None:
        await credits.bind(await credits.debit("ada@example.test", 0.001), f"gen-{i}")

    reference = await per_op(n, select_one)
    out = {
        "reference_select_1_ms": round(reference, 4),
        "session_lookup_ms": round(await per_op(n, lookup), 4),
        "limit_check_and_reserve_ms": round(await per_op(n, reserve), 4),
        "credit_debit_ms": round(await per_op(n, debit), 4),
    }
    for key in ("session_lookup_ms", "limit_check_and_reserve_ms", "credit_debit_ms"):
        out[key.replace("_ms", "_ratio")] = round(out[key] / reference, 2)
    await db.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(measure(f"sqlite+aiosqlite:///{tmp}/accounts.db", args.n))
    result = {"backend": "sqlite", "n": args.n, **result}
    for key, value in result.items():
        print(f"{key:32} {value}")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "accounts.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
