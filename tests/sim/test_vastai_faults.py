"""Faults of the Vast.ai simulator, injected through POST /_sim/faults."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

BODY = {
    "image": "ghcr.io/example/comfyui:0.3.40",
    "disk": 40,
    "label": "warmpool.ns.sdxl.ginst-1",
    "env": {"-p 8188:8188": "1", "OPEN_BUTTON_TOKEN": "instance-token"},
    "runtype": "args",
}


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
    return value


async def cheapest(http: httpx.AsyncClient) -> dict[str, Any]:
    query = {"direct_port_count": {"gte": 1}, "order": [["dph_total", "asc"]], "limit": 1}
    offer: dict[str, Any] = (await http.post("/api/v0/bundles/", json=query)).json()["offers"][0]
    return offer


async def rent(http: httpx.AsyncClient, **over: Any) -> int:
    offer = await cheapest(http)
    response = await http.put(f"/api/v0/asks/{offer['id']}/", json={**BODY, **over})
    assert response.status_code == 200, response.text
    contract: int = response.json()["new_contract"]
    return contract


async def fault(http: httpx.AsyncClient, **spec: Any) -> dict[str, Any]:
    response = await http.post("/_sim/faults", json=spec)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_no_space_keyed_by_machine_hits_every_rental_there(
    vastai_sim: Any, vastai_http: httpx.AsyncClient
) -> None:
    offer = await cheapest(vastai_http)
    await fault(vastai_http, kind="no_space", machine_id=offer["machine_id"])
    for _ in range(2):  # the machine keeps failing: a cool-down is the operator's answer
        instance_id = await rent(vastai_http)
        rental = vastai_sim.state.rentals[instance_id]
        await wait_for(lambda r=rental: "no space left on device" in (r.status_msg or ""))
        await asyncio.sleep(0.1)
        assert rental.actual_status == "loading"  # never terminal by itself
        await vastai_http.delete(f"/api/v0/instances/{instance_id}/")


async def test_stuck_loading(vastai_sim: Any, vastai_http: httpx.AsyncClient) -> None:
    await fault(vastai_http, kind="stuck_loading", label="warmpool.ns.sdxl.stuck")
    instance_id = await rent(vastai_http, label="warmpool.ns.sdxl.stuck")
    rental = vastai_sim.state.rentals[instance_id]
    await wait_for(lambda: rental.actual_status == "loading")
    message = rental.status_msg
    await asyncio.sleep(0.4)  # 40 simulated seconds: a healthy rental would be running
    assert rental.actual_status == "loading"
    assert rental.status_msg == message
    assert "Error" not in (message or "")


async def test_late_ports(vastai_sim: Any, vastai_http: httpx.AsyncClient) -> None:
    await fault(vastai_http, kind="late_ports", params={"seconds": 60})
    instance_id = await rent(vastai_http)
    rental = vastai_sim.state.rentals[instance_id]
    await wait_for(lambda: rental.actual_status == "running")
    row = (await vastai_http.get(f"/api/v0/instances/{instance_id}/")).json()["instances"]
    assert row["actual_status"] == "running"
    assert row["ports"] is None
    await wait_for(lambda: rental.ports)


async def test_offer_taken_between_search_and_rent(vastai_http: httpx.AsyncClient) -> None:
    offer = await cheapest(vastai_http)
    await fault(vastai_http, kind="offer_taken", offer_id=offer["id"], count=1)
    response = await vastai_http.put(f"/api/v0/asks/{offer['id']}/", json=BODY)
    assert response.status_code == 404
    assert "no_such_ask" in response.json()["msg"]
    ids = [o["id"] for o in (await vastai_http.post("/api/v0/bundles/", json={})).json()["offers"]]
    assert offer["id"] not in ids


async def test_rate_limit_burst_with_retry_after(vastai_http: httpx.AsyncClient) -> None:
    await fault(
        vastai_http, kind="rate_limit", endpoint="list_v1", count=2, params={"retry_after": 1.5}
    )
    codes = []
    for _ in range(3):
        response = await vastai_http.get("/api/v1/instances/")
        codes.append(response.status_code)
        if response.status_code == 429:
            assert response.headers["Retry-After"] == "1.5"
            assert "threshold=1.5" in response.text
    assert codes == [429, 429, 200]
    assert (await vastai_http.post("/api/v0/bundles/", json={})).status_code == 200


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors(vastai_http: httpx.AsyncClient, status: int) -> None:
    await fault(
        vastai_http,
        kind="server_error",
        endpoint="POST /api/v0/bundles/",
        count=1,
        params={"status": status},
    )
    assert (await vastai_http.post("/api/v0/bundles/", json={})).status_code == status
    assert (await vastai_http.post("/api/v0/bundles/", json={})).status_code == 200


async def test_error_rate_is_seeded_and_partial(vastai_http: httpx.AsyncClient) -> None:
    await fault(vastai_http, kind="server_error", endpoint="search", rate=0.5)
    codes = [(await vastai_http.post("/api/v0/bundles/", json={})).status_code for _ in range(40)]
    assert 5 < codes.count(502) < 35


async def test_slow_response_past_client_timeout(vastai_http: httpx.AsyncClient) -> None:
    await fault(vastai_http, kind="slow", endpoint="show", count=1, params={"seconds": 1.0})
    with pytest.raises(httpx.ReadTimeout):
        await vastai_http.get("/api/v0/instances/1/", timeout=0.2)
    fast = await vastai_http.get("/api/v0/instances/1/", timeout=0.5)
    assert fast.json() == {"instances": None}


async def test_create_lost_still_rents(vastai_sim: Any, vastai_http: httpx.AsyncClient) -> None:
    await fault(vastai_http, kind="create_lost", count=1)
    offer = await cheapest(vastai_http)
    response = await vastai_http.put(f"/api/v0/asks/{offer['id']}/", json=BODY)
    assert response.status_code == 504
    filters = json.dumps({"label": {"eq": BODY["label"]}})
    listed = await vastai_http.get("/api/v1/instances/", params={"select_filters": filters})
    assert len(listed.json()["instances"]) == 1


async def test_running_machine_goes_offline(vastai_sim_comfy: Any) -> None:
    headers = {"Authorization": "Bearer vast-sim-key-SECRET-42"}
    async with httpx.AsyncClient(base_url=vastai_sim_comfy.url, headers=headers) as http:
        instance_id = await rent(http)
        rental = vastai_sim_comfy.state.rentals[instance_id]
        ports = await wait_for(lambda: rental.ports)
        comfy_url = f"http://127.0.0.1:{ports['8188/tcp'][0]['HostPort']}"
        async with httpx.AsyncClient(base_url=comfy_url, timeout=5) as comfy:
            assert (await comfy.get("/system_stats")).status_code == 401
            ok = await comfy.get(
                "/system_stats", headers={"Authorization": "Bearer instance-token"}
            )
            assert ok.status_code == 200
            applied = await fault(http, kind="offline", instance_id=instance_id)
            assert applied["applied_to"] == [instance_id]
            await wait_for(lambda: rental.actual_status == "unknown")
            with pytest.raises(httpx.ConnectError):
                await comfy.get("/system_stats")
            await wait_for(lambda: rental.actual_status == "offline")
        cost = rental.accrued
        await asyncio.sleep(0.1)
        await http.get("/_sim/state")
        assert rental.accrued == cost  # not billed while offline


async def test_destroy_needs_a_second_attempt(
    vastai_sim: Any, vastai_http: httpx.AsyncClient
) -> None:
    instance_id = await rent(vastai_http)
    await fault(vastai_http, kind="destroy_retry", instance_id=instance_id)
    first = await vastai_http.delete(f"/api/v0/instances/{instance_id}/")
    assert first.status_code == 500
    assert instance_id in vastai_sim.state.rentals
    second = await vastai_http.delete(f"/api/v0/instances/{instance_id}/")
    assert second.json()["success"] is True
    assert instance_id not in vastai_sim.state.rentals


async def test_bad_fault_is_400(vastai_http: httpx.AsyncClient) -> None:
    assert (await vastai_http.post("/_sim/faults", json={"kind": "meteor"})).status_code == 400
    assert (await vastai_http.post("/_sim/faults", json={"nope": 1})).status_code == 400
    assert (await vastai_http.post("/_sim/faults", content=b"[")).status_code == 400


async def _running_comfy(sim: Any, http: httpx.AsyncClient) -> tuple[int, Any, str]:
    instance_id = await rent(http)
    rental = sim.state.rentals[instance_id]
    ports = await wait_for(lambda: rental.ports)
    return instance_id, rental, f"http://127.0.0.1:{ports['8188/tcp'][0]['HostPort']}"


async def test_a_running_machine_fills_its_disk(vastai_sim_comfy: Any) -> None:
    """``no_space`` on a running rental: the status message says so, saves fail."""
    headers = {"Authorization": "Bearer vast-sim-key-SECRET-42"}
    async with httpx.AsyncClient(base_url=vastai_sim_comfy.url, headers=headers) as http:
        instance_id, rental, _ = await _running_comfy(vastai_sim_comfy, http)
        applied = await fault(http, kind="no_space", instance_id=instance_id)
        assert applied["applied_to"] == [instance_id]
        shown = (await http.get(f"/api/v0/instances/{instance_id}/")).json()["instances"]
        assert shown["actual_status"] == "running"
        assert "no space left on device" in shown["status_msg"]
        assert rental.comfy.faults.fail["node_type"] == "SaveImage"
        assert "No space left" in rental.comfy.faults.fail["message"]


async def test_comfyui_crashes_and_its_supervisor_restarts_it(vastai_sim_comfy: Any) -> None:
    headers = {"Authorization": "Bearer vast-sim-key-SECRET-42"}
    async with httpx.AsyncClient(base_url=vastai_sim_comfy.url, headers=headers) as http:
        instance_id, rental, url = await _running_comfy(vastai_sim_comfy, http)
        token = {"Authorization": "Bearer instance-token"}

        async def stats() -> int:
            async with httpx.AsyncClient(base_url=url, headers=token, timeout=5) as comfy:
                return (await comfy.get("/system_stats")).status_code

        assert await stats() == 200
        await fault(http, kind="comfy_crash", instance_id=instance_id,
                    params={"restart_after": 20})  # fmt: skip
        await wait_for(lambda: rental.comfy.crashed)
        with pytest.raises(httpx.ConnectError):
            await stats()
        await wait_for(lambda: not rental.comfy.crashed)  # 20 simulated s later
        assert await stats() == 200
        assert rental.actual_status == "running"  # the machine itself never stopped
        assert "comfyui restarted by the supervisor" in rental.log


async def test_create_listeners_see_the_rental_before_the_answer(
    vastai_sim: Any, vastai_http: httpx.AsyncClient
) -> None:
    seen: list[int] = []
    vastai_sim.state.create_listeners.append(lambda rental: seen.append(rental.id))
    instance_id = await rent(vastai_http)
    assert seen == [instance_id]
