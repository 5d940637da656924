"""A rental reporting a loopback address is never contacted (issue 15).

The simulators run every machine on 127.0.0.1; here the operator runs WITHOUT the
loopback allowance the other system tests give it, as in production.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from factories import pool_body
from waiting import eventually

from warmpool.sim.clock import Clock
from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer
from warmpool.sim.vastai_state import ComfyHandle

API = "warmpool.dev/v1alpha1"


async def test_loopback_machine_is_refused_and_never_contacted(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any
) -> None:
    started: list[ComfyHandle] = []
    start = vastai_sim.state.comfy
    assert start is not None

    async def recording(
        token: str | None, clock: Clock, workspace: Path | None, **how: Any
    ) -> ComfyHandle:
        handle = await start(token, clock, workspace, **how)  # host, tls
        started.append(handle)
        return handle

    vastai_sim.state.comfy = recording
    cluster.create(pool_body("sdxl", replicas=1))

    def refused() -> list[dict[str, Any]]:
        return [e for e in cluster.list("v1", "Event", "default")
                if e.get("reason") == "MachineAddressRefused"]  # fmt: skip

    async with run_operator(vastai_url=vastai_sim.url, allowed_machine_networks=[]):
        await eventually(lambda: len(refused()) >= 1, timeout=60, what="an address refusal")
        await eventually(lambda: len(vastai_sim.state.destroyed) >= 1, timeout=30,
                         what="the refused rental destroyed")  # fmt: skip
    assert "127.0.0.1" in refused()[0]["message"]
    assert "loopback" in refused()[0]["message"]
    assert started, "the simulator started machines"
    # Not one request (probe, token, canary) reached any machine's ComfyUI.
    assert all(not h.requests for h in started)
    failures = (cluster.get(API, "GpuPool", "sdxl", namespace="default") or {}).get("status", {})
    assert "MachineAddressRefused" in str(failures)
