"""The simulated account (contract §5.10, §13.4): its credit falls as the rentals bill,
and the operator's reconciliation reads exactly that."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from waiting import eventually

BODY = {"image": "pytorch/pytorch", "disk": 40, "runtype": "args", "label": "by-hand"}


async def user(http: httpx.AsyncClient, path: str = "/api/v0/users/current/") -> dict[str, Any]:
    response = await http.get(path)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def state(http: httpx.AsyncClient) -> dict[str, Any]:
    data: dict[str, Any] = (await http.get("/_sim/state")).json()
    return data


async def test_the_credit_falls_as_a_running_rental_bills(
    vastai_sim: Any, vastai_http: httpx.AsyncClient
) -> None:
    start = await user(vastai_http)
    assert start["credit"] == start["balance"] == 1000
    assert {"id", "email", "ssh_key", "key_id"} <= start.keys() and "api_key" not in start
    offers = (await vastai_http.post("/api/v0/bundles/", json={})).json()["offers"]
    created = (await vastai_http.put(f"/api/v0/asks/{offers[0]['id']}/", json=BODY)).json()
    rental = vastai_sim.state.rentals[created["new_contract"]]
    await eventually(lambda: rental.actual_status == "running", timeout=30, what="running")
    credits = []
    for path in ("/api/v0/users/current/", "/api/v0/users/current"):
        before = await state(vastai_http)
        credit = (await user(vastai_http, path))["credit"]
        after = await state(vastai_http)
        # The credit is the deposit minus what was billed at the moment it was read (the
        # answer is rounded to 4 decimals).
        assert after["balance"] - 1e-4 <= credit <= before["balance"] + 1e-4
        credits.append(credit)
        # Until the rental has billed more than the answer's rounding (no fixed sleep).
        so_far = after["total_cost"]

        async def billed_more(since: float = so_far) -> bool:
            return bool((await state(vastai_http))["total_cost"] > since + 2e-4)

        await eventually(billed_more, timeout=30, interval=0.05, what="more billed")
    assert credits[1] < credits[0]
    per_hour = after["rentals"][0]["dph_total"]
    billed = after["total_cost"] - before["total_cost"]
    assert billed == pytest.approx(per_hour * (after["now"] - before["now"]) / 3600, rel=0.05)


async def test_a_deposit_raises_the_credit(vastai_http: httpx.AsyncClient) -> None:
    """``/_sim/config`` ``balance`` is the account's deposits: raising it is a top-up."""
    await vastai_http.post("/_sim/config", json={"balance": 1500})
    assert (await user(vastai_http))["credit"] == 1500


async def test_at_zero_credit_running_rentals_stop_and_only_storage_bills(
    vastai_sim: Any, vastai_http: httpx.AsyncClient
) -> None:
    """Real Vast.ai stops (does not destroy) running instances when the credit reaches zero
    (contract §7.2, F18); their disks keep billing. The simulator did not: they ran, and
    billed their GPUs, into a negative balance."""
    offers = (await vastai_http.post("/api/v0/bundles/", json={})).json()["offers"]
    created = (await vastai_http.put(f"/api/v0/asks/{offers[0]['id']}/", json=BODY)).json()
    rental = vastai_sim.state.rentals[created["new_contract"]]
    await eventually(lambda: rental.actual_status == "running", timeout=30, what="running")
    spent = (await state(vastai_http))["total_cost"]
    await vastai_http.post("/_sim/config", json={"balance": spent})  # the credit is gone
    (row,) = (await vastai_http.get("/api/v0/instances/")).json()["instances"]
    assert (row["actual_status"], row["intended_status"], row["cur_state"]) == (
        "exited", "stopped", "stopped")  # fmt: skip
    assert "credit" in row["status_msg"]
    sim = await state(vastai_http)
    assert sim["credit_stops"] == 1 and sim["rentals"]  # stopped, not destroyed
    # a start is refused while there is no credit, and so is a new rental
    started = await vastai_http.put(f"/api/v0/instances/{rental.id}/", json={"state": "running"})
    assert started.json()["success"] is False
    again = await vastai_http.put(f"/api/v0/asks/{offers[1]['id']}/", json=BODY)
    assert again.json()["success"] is False
    # only the disk bills now
    before = await state(vastai_http)

    async def billed_more() -> bool:
        return bool((await state(vastai_http))["total_cost"] > before["total_cost"] + 1e-6)

    await eventually(billed_more, timeout=30, interval=0.05, what="storage billed")
    after = await state(vastai_http)
    per_hour = after["rentals"][0]["storage_per_hour"]
    assert after["rentals"][0]["dph_total"] > 3 * per_hour  # so rel=0.5 tells them apart
    billed = after["total_cost"] - before["total_cost"]
    # The GPU bills about a hundred times the disk: within half the disk's figure is the disk
    # alone (the two state reads are not the billing's own instants, so not closer).
    assert billed == pytest.approx(per_hour * (after["now"] - before["now"]) / 3600, rel=0.5)
    assert after["credit_stops"] == 1  # already stopped: not stopped again
