"""The Vast.ai simulator: wire shapes, query language, lifecycle, faults, billing."""

from __future__ import annotations

import asyncio
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
    "cancel_unavail": True,
    "client_id": "me",
}


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def search(http: httpx.AsyncClient, **query: Any) -> list[dict[str, Any]]:
    response = await http.post("/api/v0/bundles/", json=query)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    offers: list[dict[str, Any]] = response.json()["offers"]
    return offers


async def rent(http: httpx.AsyncClient, *, ports: bool = True, **over: Any) -> int:
    offers = await search(
        http, direct_port_count={"gte": 1 if ports else 0}, order=[["dph_total", "asc"]]
    )
    response = await http.put(f"/api/v0/asks/{offers[0]['id']}/", json={**BODY, **over})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["success"] is True
    assert data["new_contract"] != offers[0]["id"]
    assert data["instance_api_key"]
    contract: int = data["new_contract"]
    return contract


async def show(http: httpx.AsyncClient, instance_id: int) -> dict[str, Any] | None:
    response = await http.get(f"/api/v0/instances/{instance_id}", params={"owner": "me"})
    assert response.status_code == 200
    row: dict[str, Any] | None = response.json()["instances"]
    return row


async def test_auth(vastai_sim: Any, vastai_sim_key: str) -> None:
    async with httpx.AsyncClient(base_url=vastai_sim.url) as http:
        anonymous = await http.post("/api/v0/bundles/", json={})
        wrong = await http.get("/api/v1/instances/", headers={"Authorization": "Bearer nope"})
        legacy = await http.get("/api/v0/instances", params={"api_key": vastai_sim_key})
        names = await http.get("/api/v0/gpu_names/unique/")
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json() == {"success": False, "error": "auth_error", "msg": "Invalid user key"}
    assert legacy.status_code == 200
    assert legacy.json() == {"instances_found": 0, "instances": []}
    assert "RTX 4090" in names.json()["gpu_names"]


async def test_catalogue_and_query_language(vastai_http: httpx.AsyncClient) -> None:
    everything = await search(vastai_http, limit=1000)
    assert len(everything) >= 30
    assert len({o["machine_id"] for o in everything}) < len(everything)  # bundles per machine
    assert {o["gpu_name"] for o in everything} >= {"RTX 3090", "RTX 4090", "RTX 5090", "L40S"}

    cheap = await search(
        vastai_http,
        gpu_name={"in": ["RTX 4090", "RTX 3090"]},
        num_gpus={"eq": "1"},  # the CLI sends numbers as strings
        reliability={"gte": 0.98},
        verified={"eq": True},
        geolocation={"notin": ["CN", "VN"]},
        dph_total={"lte": 1.0},
        order=[["dph_total", "asc"]],
        limit=1000,
    )
    assert cheap
    prices = [o["dph_total"] for o in cheap]
    assert prices == sorted(prices)
    for o in cheap:
        assert o["gpu_name"] in ("RTX 4090", "RTX 3090")
        assert o["num_gpus"] == 1
        assert o["reliability"] >= 0.98
        assert o["verification"] == "verified"
        assert not o["geolocation"].endswith(("CN", "VN"))

    us = await search(vastai_http, geolocation={"in": ["US"]}, limit=1000)
    assert us
    assert all(o["geolocation"].endswith(", US") for o in us)
    ranged = await search(vastai_http, gpu_ram={"gte": 40000, "lt": 90000}, limit=1000)
    assert all(40000 <= o["gpu_ram"] < 90000 for o in ranged)
    not_4090 = await search(vastai_http, gpu_name={"neq": "RTX 4090"}, limit=1000)
    assert all(o["gpu_name"] != "RTX 4090" for o in not_4090)
    two = await search(vastai_http, limit=2, order=[["score", "desc"]])
    assert len(two) == 2
    assert two[0]["score"] >= two[1]["score"]
    multi = await search(vastai_http, order=[["gpu_name", "asc"], ["dph_total", "desc"]], limit=99)
    keys = [(o["gpu_name"], -o["dph_total"]) for o in multi]
    assert keys == sorted(keys)

    small = await search(vastai_http, allocated_storage=10, id={"eq": everything[0]["id"]})
    big = await search(vastai_http, allocated_storage=500, id={"eq": everything[0]["id"]})
    assert big[0]["dph_total"] > small[0]["dph_total"]
    storage = big[0]["storage_cost"] * 500 / 720
    assert big[0]["dph_total"] == pytest.approx(big[0]["dph_base"] + storage, abs=1e-5)
    for kind in ("on-demand", "ondemand", "bid"):
        assert await search(vastai_http, type=kind, limit=1)
    assert (await search(vastai_http, type="bid", limit=1))[0]["is_bid"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"gpu_name": {"like": "RTX"}},
        {"num_gpus": {"gte": "many"}},
        {"gpu_name": {"in": "RTX 4090"}},
        {"order": "dph_total"},
        {"order": [["dph_total", "sideways"]]},
        {"type": "spot"},
        {"limit": "ten"},
    ],
    ids=["operator", "number", "in-list", "order-shape", "direction", "type", "limit"],
)
async def test_malformed_query_is_400(vastai_http: httpx.AsyncClient, body: Any) -> None:
    response = await vastai_http.post("/api/v0/bundles/", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_bad_input_gets_real_answers(vastai_http: httpx.AsyncClient) -> None:
    offer = (await search(vastai_http, limit=1))[0]
    missing_image = await vastai_http.put(f"/api/v0/asks/{offer['id']}/", json={"disk": 20})
    assert missing_image.status_code == 400
    assert missing_image.json()["error"] == "invalid_args"
    unknown = await vastai_http.put("/api/v0/asks/123/", json=BODY)
    assert unknown.status_code == 404
    assert "no_such_ask" in unknown.json()["msg"]
    not_json = await vastai_http.put(f"/api/v0/asks/{offer['id']}/", content=b"{nope")
    assert not_json.status_code == 400
    small_disk = await vastai_http.put(f"/api/v0/asks/{offer['id']}/", json={**BODY, "disk": 2})
    assert small_disk.status_code == 400
    bad_price = await vastai_http.put(f"/api/v0/asks/{offer['id']}/", json={**BODY, "price": 500})
    assert bad_price.json()["error"] == "invalid_price"
    long_label = await vastai_http.put(
        f"/api/v0/asks/{offer['id']}/", json={**BODY, "label": "x" * 300}
    )
    assert long_label.status_code == 400
    assert (await vastai_http.delete("/api/v0/instances/1/")).status_code == 404
    assert (await vastai_http.get("/api/v1/instances/", params={"after_token": "!!"})).json()[
        "error"
    ] == "invalid_token"
    assert (await vastai_http.get("/api/v0/nothing/here")).status_code == 404


async def test_lifecycle_and_ports(vastai_sim: Any, vastai_http: httpx.AsyncClient) -> None:
    # 0.3-0.4 s of real time before "loading" (10-30 ms with the fast timing): the first
    # look must still see the rental before it loads, on a busy machine too.
    vastai_sim.state.timing.loading_after = (30.0, 40.0)
    instance_id = await rent(vastai_http)
    first = await show(vastai_http, instance_id)
    assert first is not None
    assert first["actual_status"] is None
    assert first["intended_status"] == "running"
    assert first["ports"] is None
    assert first["label"] == BODY["label"]
    assert ["-p 8188:8188", "1"] in first["extra_env"]
    assert isinstance(first["start_date"], float)
    seen: set[str | None] = set()
    messages: set[str] = set()

    def running_with_ports() -> dict[str, Any] | None:
        rental = vastai_sim.state.rentals[instance_id]
        seen.add(rental.actual_status)
        messages.add(rental.status_msg or "")
        return rental.ports if rental.ports else None

    ports = await wait_for(running_with_ports)
    row = await show(vastai_http, instance_id)
    assert row is not None
    assert row["actual_status"] == "running"
    assert row["cur_state"] == "running"
    assert row["public_ipaddr"] == "127.0.0.1"
    assert row["status_msg"].startswith("success, running ghcr.io/example/comfyui_0.3.40/args")
    assert row["ports"] == ports
    assert set(ports) == {"8188/tcp"}
    assert "loading" in seen
    assert any("Pull complete" in m or "Download complete" in m for m in messages)


async def test_renting_hides_the_machine_until_destroyed(vastai_http: httpx.AsyncClient) -> None:
    before = await search(vastai_http, limit=1000)
    instance_id = await rent(vastai_http)
    row = await show(vastai_http, instance_id)
    assert row is not None
    during = await search(vastai_http, limit=1000)
    assert row["machine_id"] not in {o["machine_id"] for o in during}
    siblings = [o for o in before if o["machine_id"] == row["machine_id"]]
    assert len(during) == len(before) - len(siblings)
    again = await vastai_http.put(f"/api/v0/asks/{siblings[0]['id']}/", json=BODY)
    assert again.status_code == 404
    assert (await vastai_http.delete(f"/api/v0/instances/{instance_id}/")).json()["success"]
    assert await show(vastai_http, instance_id) is None
    assert (await vastai_http.delete(f"/api/v0/instances/{instance_id}/")).status_code == 404
    assert len(await search(vastai_http, limit=1000)) == len(before)


async def test_v1_list_pages_labels_and_filters(vastai_http: httpx.AsyncClient) -> None:
    ids = [await rent(vastai_http, ports=False, label=f"warmpool.ns.p.i{n}") for n in range(3)]
    await vastai_http.put(f"/api/v0/instances/{ids[2]}/", json={"label": None})
    got: list[int] = []
    params: dict[str, Any] = {"limit": "2", "select_filters": "{}"}
    pages = 0
    while True:
        data = (await vastai_http.get("/api/v1/instances/", params=params)).json()
        pages += 1
        assert data["total_instances"] == 3
        assert data["label_counts"] == {"warmpool.ns.p.i0": 1, "warmpool.ns.p.i1": 1, "": 1}
        got += [row["id"] for row in data["instances"]]
        if not data["next_token"]:
            break
        params["after_token"] = data["next_token"]
    assert got == sorted(ids)
    assert pages == 2
    by_label = await vastai_http.get(
        "/api/v1/instances/", params={"select_filters": '{"label": {"in": ["warmpool.ns.p.i1"]}}'}
    )
    assert [r["id"] for r in by_label.json()["instances"]] == [ids[1]]
    unlabelled = await vastai_http.get(
        "/api/v1/instances/", params={"select_filters": '{"label": {"in": [null]}}'}
    )
    assert [r["id"] for r in unlabelled.json()["instances"]] == [ids[2]]
    computed = await vastai_http.get(
        "/api/v1/instances/", params={"select_filters": '{"dph_total": {"lt": 1}}'}
    )
    assert computed.status_code == 400


async def test_label_and_logs(vastai_sim: Any, vastai_http: httpx.AsyncClient) -> None:
    instance_id = await rent(vastai_http, onstart="echo warm")
    await wait_for(lambda: vastai_sim.state.rentals[instance_id].actual_status == "running")
    labelled = await vastai_http.put(f"/api/v0/instances/{instance_id}/", json={"label": "new"})
    assert labelled.json()["success"] is True
    assert (await show(vastai_http, instance_id) or {})["label"] == "new"
    too_long = await vastai_http.put(f"/api/v0/instances/{instance_id}", json={"label": "x" * 2000})
    assert too_long.json()["error"] == "label_too_long"
    # A whole real second (100 simulated) before the file appears: the first look comes before.
    vastai_sim.state.timing.logs_after = 100.0
    logs = await vastai_http.put(f"/api/v0/instances/request_logs/{instance_id}/", json={})
    url = logs.json()["result_url"]
    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.get(url)).status_code == 404  # not ready yet
        deadline = time.monotonic() + 5
        while (response := await anonymous.get(url)).status_code != 200:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        text = response.text
    assert "success, running" in text
    assert "echo warm" in text


async def test_billing_accrues_at_dph(vastai_sim: Any, vastai_http: httpx.AsyncClient) -> None:
    instance_id = await rent(vastai_http)
    rental = vastai_sim.state.rentals[instance_id]
    await wait_for(lambda: rental.actual_status == "running")
    state1 = (await vastai_http.get("/_sim/state")).json()
    t1, cost1 = state1["now"], state1["rentals"][0]["accrued_cost"]
    await asyncio.sleep(0.2)
    state2 = (await vastai_http.get("/_sim/state")).json()
    t2, cost2 = state2["now"], state2["rentals"][0]["accrued_cost"]
    per_hour = state2["rentals"][0]["dph_total"]
    assert cost2 - cost1 == pytest.approx(per_hour * (t2 - t1) / 3600, rel=0.02, abs=1e-6)
    assert state2["total_cost"] == pytest.approx(cost2, abs=1e-6)
    await vastai_http.delete(f"/api/v0/instances/{instance_id}/")
    final = (await vastai_http.get("/_sim/state")).json()
    frozen = final["destroyed"][0]["accrued_cost"]
    await asyncio.sleep(0.1)
    assert (await vastai_http.get("/_sim/state")).json()["destroyed"][0]["accrued_cost"] == frozen
    assert final["requests"]["PUT /api/v0/asks/{id}/"] == 1
    user = (await vastai_http.get("/api/v0/users/current")).json()
    assert user["balance"] == pytest.approx(1000 - frozen, abs=1e-3)


async def test_reset(vastai_sim: Any, vastai_http: httpx.AsyncClient) -> None:
    await rent(vastai_http)
    await vastai_http.post("/_sim/faults", json={"kind": "server_error", "endpoint": "list"})
    assert (await vastai_http.post("/_sim/reset")).status_code == 200
    state = (await vastai_http.get("/_sim/state")).json()
    assert state["rentals"] == []
    assert state["faults"] == []
    assert state["requests"] == {}
