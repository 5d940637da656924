"""The Vast.ai simulator's stop and start (contract §5.6, §7.2, §11, F17, F19).

A stopped rental releases its GPU (its machine is on the market again), keeps its disk and
bills storage only; a start loads for the resume time and runs again with a new ComfyUI
port (and a new address on a host without a static IP); a start whose GPU was taken waits
with ``intended_status=running`` and ``cur_state=stopped``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from waiting import eventually

from warmpool.sim.vastai import VastaiServer, start_vastai
from warmpool.sim.vastai_catalogue import generate_machines
from warmpool.sim.vastai_state import Rental, Timing

KEY = "vast-sim-key-SECRET-stop"
TOKEN = "instance-token-0123"
BODY = {
    "image": "ghcr.io/example/comfyui:0.3.40",
    "disk": 40,
    "label": "warmpool.ns.sdxl.ginst-cold",
    "env": {"-p 8188:8188": "1", "OPEN_BUTTON_TOKEN": TOKEN},
    "runtype": "args",
}
FAST = Timing(loading_after=(1.0, 2.0), pull=(10.0, 20.0), ports_after=(0.0, 1.0),
              resume=(5.0, 6.0))  # fmt: skip


def machines(*, static_ip: bool) -> list[Any]:
    found = generate_machines(3)
    for m in found:
        m.static_ip = static_ip
        m.direct_port_count = max(m.direct_port_count, 20)
    return found


@pytest.fixture(params=[False, True], ids=["dynamic-ip", "static-ip"])
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[VastaiServer]:
    server = await start_vastai(
        api_key=KEY, time_scale=100.0, timing=Timing(**vars(FAST)),
        machines=machines(static_ip=request.param), comfy_options={"step_seconds": 0.05},
    )  # fmt: skip
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http(sim: VastaiServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=sim.url, headers=headers, timeout=10) as client:
        yield client


async def rent(http: httpx.AsyncClient) -> int:
    offers = (await http.post("/api/v0/bundles/", json={"order": [["dph_total", "asc"]]})).json()
    response = await http.put(f"/api/v0/asks/{offers['offers'][0]['id']}/", json=BODY)
    contract: int = response.json()["new_contract"]
    return contract


async def row(http: httpx.AsyncClient, contract: int) -> dict[str, Any]:
    found: dict[str, Any] = (await http.get(f"/api/v0/instances/{contract}/")).json()["instances"]
    return found


async def set_state(http: httpx.AsyncClient, contract: int, state: str) -> None:
    response = await http.put(f"/api/v0/instances/{contract}/", json={"state": state})
    assert response.json() == {"success": True}


async def comfy_answers(url: str) -> bool:
    async with httpx.AsyncClient(timeout=2) as client:
        try:
            got = await client.get(
                f"{url}/system_stats", headers={"Authorization": f"Bearer {TOKEN}"}
            )
        except httpx.TransportError:
            return False
    return got.status_code == 200


def url_of(found: dict[str, Any]) -> str | None:
    ports = found.get("ports") or {}
    if found["actual_status"] != "running" or not ports.get("8188/tcp"):
        return None
    return f"http://{found['public_ipaddr']}:{ports['8188/tcp'][0]['HostPort']}"


async def running(http: httpx.AsyncClient, contract: int) -> str:
    async def ready() -> str | None:
        return url_of(await row(http, contract))

    return await eventually(ready, timeout=20, what="running with its ComfyUI port")


async def test_stop_keeps_the_disk_bills_storage_and_start_answers_at_a_new_port(
    sim: VastaiServer, http: httpx.AsyncClient
) -> None:
    contract = await rent(http)
    first_url = await running(http, contract)
    assert await comfy_answers(first_url)
    rental: Rental = sim.state.rentals[contract]
    (sim.state.workspace_for(rental) / "model.safetensors").write_bytes(b"weights")
    machine = rental.machine.machine_id

    await set_state(http, contract, "stopped")
    stopped = await row(http, contract)
    assert (stopped["actual_status"], stopped["intended_status"], stopped["cur_state"]) == (
        "exited", "stopped", "stopped")  # fmt: skip
    assert stopped["ports"] is None
    assert not await comfy_answers(first_url)
    market = (await http.post("/api/v0/bundles/", json={"limit": 1000})).json()["offers"]
    assert machine in {o["machine_id"] for o in market}, "a stopped rental holds no GPU"

    # Storage only while stopped: storage_cost × disk / 720 per hour.
    before = (await http.get("/_sim/state")).json()
    await eventually(lambda: sim.state.clock.now() - before["now"] > 60, what="a simulated minute")
    after = (await http.get("/_sim/state")).json()
    per_hour = rental.machine.storage_cost * BODY["disk"] / 720.0  # type: ignore[operator]
    assert after["rentals"][0]["storage_per_hour"] == pytest.approx(per_hour, abs=1e-6)
    billed = after["rentals"][0]["accrued_cost"] - before["rentals"][0]["accrued_cost"]
    assert billed == pytest.approx(per_hour * (after["now"] - before["now"]) / 3600, rel=0.05)

    await set_state(http, contract, "running")
    starting = await row(http, contract)
    assert starting["intended_status"] == "running"
    second_url = await running(http, contract)
    assert second_url != first_url
    new = await row(http, contract)
    if rental.machine.static_ip:
        assert new["public_ipaddr"] == stopped["public_ipaddr"] == "127.0.0.1"
    else:
        assert new["public_ipaddr"] != "127.0.0.1", "a dynamic-IP host changes address (F19)"
    assert await comfy_answers(second_url)
    assert rental.workspace is not None
    assert (rental.workspace / "model.safetensors").read_bytes() == b"weights"
    market = (await http.post("/api/v0/bundles/", json={"limit": 1000})).json()["offers"]
    assert machine not in {o["machine_id"] for o in market}
    assert (await http.get("/_sim/state")).json()["rentals"][0]["starts"] == 1


async def test_a_start_whose_gpu_was_taken_waits_in_scheduling(
    sim: VastaiServer, http: httpx.AsyncClient
) -> None:
    contract = await rent(http)
    await running(http, contract)
    await set_state(http, contract, "stopped")
    fault = {"kind": "gpu_taken", "instance_id": contract, "count": 1}
    assert (await http.post("/_sim/faults", json=fault)).json()["success"]
    await set_state(http, contract, "running")
    t0 = sim.state.clock.now()
    await eventually(lambda: sim.state.clock.now() - t0 > 120, what="two simulated minutes")
    waiting = await row(http, contract)
    assert (waiting["intended_status"], waiting["cur_state"]) == ("running", "stopped")
    assert waiting["actual_status"] in ("exited", "stopped")
    assert (await http.get("/_sim/state")).json()["rentals"][0]["gpu_taken"] is True
    # Stopped and started again, the fault spent: the GPU is free this time.
    await set_state(http, contract, "stopped")
    await set_state(http, contract, "running")
    await running(http, contract)


async def test_gpu_taken_probability_and_resume_time_are_settable(
    sim: VastaiServer, http: httpx.AsyncClient
) -> None:
    answer = await http.post("/_sim/config", json={"timing": {"gpu_taken": 1.0,
                                                              "resume": [1, 2]}})  # fmt: skip
    assert answer.json()["timing"]["gpu_taken"] == 1.0
    assert answer.json()["timing"]["resume"] == [1.0, 2.0]
    assert (await http.post("/_sim/config", json={"timing": {"gpu_taken": 2}})).status_code == 400
    contract = await rent(http)
    await running(http, contract)
    await set_state(http, contract, "stopped")
    await set_state(http, contract, "running")
    await eventually(lambda: sim.state.rentals[contract].gpu_taken, what="the GPU taken")
    assert sim.state.rentals[contract].cur_state == "stopped"
