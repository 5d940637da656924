"""Spending limits in dollars, per user per UTC day and month, on SQLite and PostgreSQL:
a submission reserves its estimate, the finished job settles at its actual cost, a
submission that would cross a limit gets 402 with what is left and when it resets, and an
admin's override beats the default."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from recordsdb import pg_server, records_url  # noqa: F401  (fixtures)
from waiting import eventually

from warmpool.api.accounts.limits import Spending, SpendLimitError, next_month
from warmpool.api.records.db import Database

ADMIN = {"X-Auth-Request-User": "root@example.com", "X-Auth-Request-Groups": "warmpool-admins"}
BOB = {"X-Auth-Request-User": "bob"}
JOB = {"pool": "sdxl", "prompt": "a lighthouse at dusk", "quality": "low"}


@pytest.fixture
async def db(records_url: str) -> Any:  # noqa: F811
    database = Database(records_url)
    await database.migrate()
    yield database
    await database.close()


async def test_reservations_count_until_the_job_settles(db: Database) -> None:
    spending = Spending(db, daily=1.0, monthly=None)
    now = datetime(2031, 5, 31, 22, 0, tzinfo=UTC)
    first = await spending.reserve("bob", 0.6, now=now)
    with pytest.raises(SpendLimitError) as refused:
        await spending.reserve("bob", 0.6, now=now)
    window = refused.value.window
    assert window.name == "day" and window.left == pytest.approx(0.4)
    assert window.resets_at == datetime(2031, 6, 1, tzinfo=UTC)
    assert "$0.4000 left until 2031-06-01 00:00 UTC" in str(refused.value)
    assert (await spending.standing("alice", now=now)).day.spent == 0  # per user

    # The job finishes at a lower actual cost: its ledger row replaces the reservation.
    await spending.bind(first, "gen-1")
    from warmpool.api.records.usage import Ledger

    await Ledger(db).record({
        "job_uid": "u1", "job": "gen-1", "namespace": "default", "owner": "bob",
        "pool": "sdxl", "gpu": "", "instance": "", "phase": "Succeeded", "seconds": 60.0,
        "cost": 0.25, "finished_at": now, "day": "2031-05-31",
    })  # fmt: skip
    standing = await spending.standing("bob", now=now)
    assert standing.day.spent == pytest.approx(0.25) and standing.day.left == pytest.approx(0.75)
    await spending.reserve("bob", 0.6, now=now)  # fits now
    # A new day: the day window is empty again; the month keeps counting.
    tomorrow = datetime(2031, 6, 1, 1, 0, tzinfo=UTC)
    assert (await spending.standing("bob", now=tomorrow)).day.spent == 0


async def test_concurrent_submissions_cannot_both_pass(db: Database) -> None:
    spending = Spending(db, daily=1.0, monthly=None)
    results = await asyncio.gather(
        *(spending.reserve("bob", 0.3) for _ in range(6)), return_exceptions=True
    )
    passed = [r for r in results if isinstance(r, str)]
    assert len(passed) == 3, results
    assert all(isinstance(r, SpendLimitError) for r in results if not isinstance(r, str))


async def test_overrides_beat_the_defaults_and_no_limit_holds_nothing(db: Database) -> None:
    spending = Spending(db, daily=None, monthly=2.0)
    assert await spending.reserve("bob", 1.5) != ""
    with pytest.raises(SpendLimitError) as refused:
        await spending.reserve("bob", 1.0)
    assert refused.value.window.name == "month"
    await spending.set_override("bob", daily=None, monthly=None, by="root")
    assert await spending.reserve("bob", 100.0) == ""  # no limit: nothing written
    assert [o.owner for o in await spending.overrides()] == ["bob"]
    assert await spending.clear_override("bob")
    with pytest.raises(SpendLimitError):
        await spending.reserve("bob", 1.0)


def test_months_reset_on_the_first() -> None:
    assert next_month(datetime(2031, 12, 1, tzinfo=UTC)) == datetime(2032, 1, 1, tzinfo=UTC)
    assert next_month(datetime(2031, 2, 1, tzinfo=UTC)) == datetime(2031, 3, 1, tzinfo=UTC)


async def test_submissions_get_402_past_the_limit_and_admins_set_overrides(
    studio: Any,
    drive: Any,
    records_url: str,  # noqa: F811
) -> None:
    http: httpx.AsyncClient = await studio(
        studio_auth="proxy", studio_proxy_headers="X-Auth-Request",
        studio_records_url=records_url, studio_spend_daily_limit=0.0,
    )  # fmt: skip
    estimate = (await http.post("/api/v1/estimate", json=JOB, headers=BOB)).json()["dollars"]
    assert estimate > 0
    r = await http.post("/api/v1/generations", json=JOB, headers=BOB)
    assert r.status_code == 402
    body = r.json()
    assert body["window"] == "day" and body["left"] == 0 and body["limit"] == 0
    assert body["resetsAt"].endswith("T00:00:00Z") and "daily limit" in body["detail"]

    # An admin gives bob room for one and a half generations.
    room: dict[str, float | None] = {"daily": round(estimate * 1.5, 6), "monthly": None}
    assert (await http.put("/api/v1/admin/limits/bob", json=room, headers=BOB)).status_code == 403
    assert (await http.put("/api/v1/admin/limits/bob", json=room, headers=ADMIN)).status_code == 204
    bad = await http.put("/api/v1/admin/limits/bob", json={"daily": -1}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "daily"]
    made = await http.post("/api/v1/generations", json=JOB, headers=BOB)
    assert made.status_code == 201, made.text
    spend = (await http.get("/api/v1/account/spend", headers=BOB)).json()
    assert spend["day"]["spent"] == pytest.approx(estimate, abs=1e-6)
    refused = await http.post("/api/v1/generations", json=JOB, headers=BOB)
    assert refused.status_code == 402
    assert refused.json()["left"] == pytest.approx(room["daily"] - estimate, abs=1e-6)

    # The job ends having cost a fifth of its estimate: settled, so bob has room again.
    name = made.json()["name"]
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    await drive.set_status(name, {"phase": "Succeeded", "startedAt": now, "finishedAt": now,
                                  "actualCost": round(estimate / 5, 6)})  # fmt: skip

    async def settled() -> dict[str, Any] | None:
        got = (await http.get("/api/v1/account/spend", headers=BOB)).json()
        return got if got["day"]["spent"] == pytest.approx(estimate / 5, abs=1e-6) else None

    await eventually(settled, what="the job settled at its actual cost")
    assert (await http.post("/api/v1/generations", json=JOB, headers=BOB)).status_code == 201

    listed = (await http.get("/api/v1/admin/limits", headers=ADMIN)).json()
    assert listed["defaultDaily"] == 0.0
    (bob,) = listed["overrides"]
    assert bob["owner"] == "bob" and bob["updatedBy"] == "root@example.com"
    assert bob["spend"]["day"]["limit"] == room["daily"]
    rows = (await http.get("/api/v1/admin/audit", params={"action": "limits.set"},
                           headers=ADMIN)).json()["items"]  # fmt: skip
    assert rows and rows[0]["objectName"] == "bob"


async def test_the_credit_ledger_is_its_entries(db: Database) -> None:
    """Credits (payments on), on both backends: the balance is the sum of the entries; a
    purchase event, a debit, a settlement and a refund each apply once."""
    from warmpool.api.accounts.credits import Credits, InsufficientCreditError

    credits = Credits(db, markup=2.0)
    with pytest.raises(InsufficientCreditError) as refused:
        await credits.debit("bob", 1.0)
    assert refused.value.needed == 2.0 and refused.value.balance == 0
    assert await credits.purchase("evt_1", "bob", 10.0, "pi_1")
    assert not await credits.purchase("evt_1", "bob", 10.0, "pi_1")  # replayed
    key = await credits.debit("bob", 1.0)
    await credits.bind(key, "gen-1")
    assert await credits.balance("bob") == 8.0
    assert await credits.settle("bob", "gen-1", "Succeeded", 0.25)  # cost 0.25 × 2 = 0.5
    assert not await credits.settle("bob", "gen-1", "Succeeded", 0.25)
    assert await credits.balance("bob") == 9.5
    failed = await credits.debit("bob", 1.0)
    await credits.bind(failed, "gen-2")
    assert await credits.settle("bob", "gen-2", "Failed", 0.1)
    assert await credits.balance("bob") == 9.5
    dropped = await credits.debit("bob", 1.0)  # the job could not be created
    await credits.release(dropped)
    assert await credits.balance("bob") == 9.5
    assert not await credits.settle("alice", "gen-1", "Failed", 0.0)  # not hers
    kinds = [e.kind for e in await credits.history("bob")]
    assert kinds == ["refund", "debit", "refund", "debit", "settle", "debit", "purchase"]


async def test_an_override_set_after_a_submission_limits_the_next(db: Database) -> None:
    """Regression: the overrides are kept in the process on SQLite (one replica), so a
    submission without a limit reads nothing; setting or clearing one must still take
    effect on the very next submission, not after a restart."""
    spending = Spending(db, daily=None, monthly=None)
    now = datetime(2031, 5, 31, 22, 0, tzinfo=UTC)
    assert await spending.reserve("bob", 0.6, now=now) == ""  # no limit: read and kept
    await spending.set_override("bob", daily=1.0, monthly=None, by="root")
    assert await spending.reserve("bob", 0.6, now=now)  # held against the new limit
    with pytest.raises(SpendLimitError):
        await spending.reserve("bob", 0.6, now=now)
    assert await spending.clear_override("bob")
    assert await spending.reserve("bob", 0.6, now=now) == ""
