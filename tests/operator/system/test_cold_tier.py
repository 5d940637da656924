"""The cold tier end to end (issue 17): the real operator (Kopf), the emulated API, the
Vast.ai simulator whose machines run the real provisioning script against a local model
server, and the ComfyUI simulators behind its rentals.

One pool with ``cold.replicas: 1`` goes through the whole story: a burst rents a second
machine; once idle it is stopped, not destroyed; the next burst starts it again and a job
runs on it without the models being downloaded again; a start whose GPU was taken falls
back to a fresh rental (and no machine is blamed); ``maxAge`` destroys the cold one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jobsys
import pytest
from jobsys import API, DONE, job_body, phase, pool_body, status
from model_server import ModelServer, Route
from prometheus_client import REGISTRY
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer
from warmpool.sim.vastai_state import Fault

CKPT = os.urandom(120_000)
#: The checkpoint jobs and the canary load by default (workflows.DEFAULT_CHECKPOINT).
CKPT_FILE = "sd_xl_base_1.0.safetensors"


@pytest.fixture
def models() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


def instances(cluster: RunningCluster) -> list[dict[str, Any]]:
    return cluster.list(API, "GpuInstance", "default")


def in_phase(cluster: RunningCluster, wanted: str) -> list[dict[str, Any]]:
    return [i for i in instances(cluster) if (i.get("status") or {}).get("phase") == wanted]


def downloads(models: ModelServer) -> int:
    return sum(1 for s in models.seen if s.path == "/ckpt")


def events(cluster: RunningCluster, reason: str) -> list[dict[str, Any]]:
    return [e for e in cluster.list("v1", "Event", "default") if e.get("reason") == reason]


def describe(cluster: RunningCluster, sim: VastaiServer) -> str:
    """What the pool, its instances and the rentals look like (for failure messages)."""
    rows = [(i["metadata"]["name"], (i.get("status") or {}).get("phase"),
             (i.get("status") or {}).get("reason"), (i.get("status") or {}).get("contractId"))
            for i in instances(cluster)]  # fmt: skip
    rentals = [(r.id, r.actual_status, r.intended_status, r.cur_state, r.gpu_taken)
               for r in sim.state.rentals.values()]  # fmt: skip
    reasons = [e.get("reason") for e in cluster.list("v1", "Event", "default")][-30:]
    return f"instances {rows}; rentals {rentals}; events {reasons}"


def pool(cluster: RunningCluster) -> dict[str, Any]:
    return cluster.get(API, "GpuPool", "cold", namespace="default") or {}


def burst(cluster: RunningCluster, tag: str, count: int = 3) -> list[str]:
    """Jobs long enough (30 steps of ~80 ms) that one machine would keep them waiting."""
    names = [f"{tag}-{n}" for n in range(count)]
    for name in names:
        cluster.create(job_body(name, "cold", steps=30, width=1024, height=1024))
    return names


async def all_succeeded(cluster: RunningCluster, names: list[str]) -> None:
    await eventually(lambda: all(phase(cluster, n) in DONE for n in names), timeout=60,
                     what=f"jobs {names} done",
                     state=lambda: [(n, phase(cluster, n)) for n in names])  # fmt: skip
    assert [phase(cluster, n) for n in names] == ["Succeeded"] * len(names), [
        (n, status(cluster, n).get("reason"), status(cluster, n).get("message")) for n in names
    ]


async def one_stopped(cluster: RunningCluster) -> dict[str, Any]:
    """One instance Stopped and one Ready (the warm floor)."""

    def settled() -> dict[str, Any] | None:
        stopped, ready = in_phase(cluster, "Stopped"), in_phase(cluster, "Ready")
        return stopped[0] if len(stopped) == 1 and len(ready) == 1 else None

    found: dict[str, Any] = await eventually(
        settled, timeout=60, what="one Stopped, one Ready",
        state=lambda: [(i["metadata"]["name"], (i.get("status") or {}).get("phase"))
                       for i in instances(cluster)],
    )  # fmt: skip
    return found


async def patch_pool(http: httpx.AsyncClient, spec: dict[str, Any]) -> None:
    response = await http.patch(
        f"/apis/{API}/namespaces/default/gpupools/cold",
        json={"spec": spec},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    response.raise_for_status()


async def test_stop_resume_without_downloads_gpu_taken_fallback_and_max_age(
    cluster: RunningCluster,
    cluster_http: httpx.AsyncClient,
    kubeconfig: Path,
    slow_sim: VastaiServer,
    artifacts_url: str,
    models: ModelServer,
) -> None:
    url = models.add("/ckpt", Route(data=CKPT))
    template = {"diskGb": 50, "modelStallTimeout": "5s",
                "models": [{"folder": "checkpoints", "file": CKPT_FILE, "url": url,
                            "sizeBytes": len(CKPT)}]}  # fmt: skip
    cold_spec = {"replicas": 1, "resumeTimeout": "6s", "maxAge": "1h"}
    cluster.create(pool_body("cold", replicas=1, maxReplicas=2, template=template, cold=cold_spec))
    sim = slow_sim
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)):
        await jobsys.ready(cluster, 1)
        assert downloads(models) == 1

        # 1. A burst rents a second machine; once idle, one of the two is stopped, not
        #    destroyed: its rental exists, stopped, billing storage only.
        await all_succeeded(cluster, burst(cluster, "burst"))
        assert len(sim.state.rentals) + len(sim.state.destroyed) == 2
        cold = await one_stopped(cluster)
        contract = cold["status"]["contractId"]
        assert cold["status"]["reason"] == "IdleCold"
        rental = sim.state.rentals[contract]
        # The phase is written first, then Vast.ai is asked to stop it.
        stopped = ("stopped", "stopped")
        await eventually(lambda: (rental.intended_status, rental.cur_state) == stopped,
                         what="the rental stopped on Vast.ai")  # fmt: skip
        assert not sim.state.destroyed
        assert 0 < cold["status"]["storagePerHour"] == pytest.approx(rental.storage_rate, abs=1e-6)
        assert cold["status"]["pricePerHour"] == cold["status"]["storagePerHour"]
        assert downloads(models) == 2  # one per machine
        await eventually(lambda: (pool(cluster).get("status") or {}).get("coldReplicas") == 1,
                         what="the pool counts one cold instance")  # fmt: skip
        assert pool(cluster)["status"]["replicas"] == 1  # a stopped one serves nothing

        # 2. The next burst starts it again; a job runs on it; no model is downloaded again.
        names = burst(cluster, "again", count=4)  # outlasts a start and its canary
        await eventually(lambda: events(cluster, "Resumed"), timeout=30, what="Resumed")
        await all_succeeded(cluster, names)
        assert cold["metadata"]["name"] in {status(cluster, n)["instance"] for n in names}
        # At least once: a start may lose to the warm machine and be stopped again
        # (ResumeSurplus) and started later in the same burst.
        assert rental.starts >= 1 and contract in sim.state.rentals
        assert downloads(models) == 2, "the disk kept the models: nothing downloaded again"
        assert len(sim.state.rentals) + len(sim.state.destroyed) == 2  # no fresh rental
        resumed = REGISTRY.get_sample_value(
            "warmpool_resume_seconds_count", {"namespace": "default", "pool": "cold"}
        )
        assert resumed is not None and resumed >= 1

        # 3. Stopped again once idle; this time its GPU is taken when it starts: it is
        #    destroyed and a fresh machine rented instead; no machine is blamed.
        cold = await one_stopped(cluster)
        contract = cold["status"]["contractId"]
        sim.state.add_fault(Fault(kind="gpu_taken", instance_id=contract, count=1))
        names = burst(cluster, "taken", count=6)  # outlasts the resume timeout
        try:
            await eventually(lambda: contract not in sim.state.rentals, timeout=40,
                             what="the start whose GPU was taken given up")  # fmt: skip
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {describe(cluster, sim)}") from None
        await all_succeeded(cluster, names)
        assert len(sim.state.rentals) + len(sim.state.destroyed) == 3  # a fresh rental
        (taken,) = [e for e in events(cluster, "GpuTaken")
                    if e["involvedObject"]["name"] == cold["metadata"]["name"]]  # fmt: skip
        assert "scheduling" in taken["message"]
        assert (pool(cluster).get("status") or {}).get("hostFailures") in (None, [])
        failures = REGISTRY.get_sample_value(
            "warmpool_resume_failures_total",
            {"namespace": "default", "pool": "cold", "reason": "GpuTaken"},
        )
        assert failures is not None and failures >= 1

        # 4. maxAge: the cold one (the fresh machine, stopped once idle) is destroyed.
        cold = await one_stopped(cluster)
        contract = cold["status"]["contractId"]
        await patch_pool(cluster_http, {"cold": {"maxAge": "1s"}})
        await eventually(lambda: contract not in sim.state.rentals, timeout=30,
                         what="the cold instance destroyed after maxAge")  # fmt: skip
        await eventually(lambda: not in_phase(cluster, "Stopped"), what="no Stopped instance")
        assert [e for e in events(cluster, "MaxAge")
                if e["involvedObject"]["name"] == cold["metadata"]["name"]]  # fmt: skip
        assert len(in_phase(cluster, "Ready")) == 1  # the warm floor stays
    spent = sum(r.accrued for r in [*sim.state.rentals.values(), *sim.state.destroyed])
    assert spent > 0
    assert json.dumps(pool(cluster)["status"]).count("coldReplicas") == 1


async def test_at_the_budget_cap_the_stopped_instance_goes_first(
    cluster: RunningCluster,
    cluster_http: httpx.AsyncClient,
    kubeconfig: Path,
    slow_sim: VastaiServer,
    artifacts_url: str,
) -> None:
    """Storage is never paid silently: a cap the warm machine fits under but not with the
    stopped one's disk destroys the stopped one (BudgetCap) and keeps the warm one."""
    cluster.create(pool_body("cold", replicas=1, maxReplicas=2, cold={"replicas": 1}))
    sim = slow_sim
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)):
        await jobsys.ready(cluster, 1)
        await all_succeeded(cluster, burst(cluster, "burst"))
        cold = await one_stopped(cluster)
        (warm,) = in_phase(cluster, "Ready")
        storage = cold["status"]["storagePerHour"]
        assert storage > 0
        cap = warm["status"]["pricePerHour"] + storage / 2
        await patch_pool(cluster_http, {"budget": {"maxHourlySpend": round(cap, 6)}})
        contract = cold["status"]["contractId"]
        await eventually(lambda: contract not in sim.state.rentals, timeout=30,
                         what="the stopped instance destroyed at the cap")  # fmt: skip
        assert [e for e in events(cluster, "BudgetCap")
                if e["involvedObject"]["name"] == cold["metadata"]["name"]]  # fmt: skip
        assert [i["metadata"]["name"] for i in in_phase(cluster, "Ready")] == [
            warm["metadata"]["name"]
        ]
        assert warm["status"]["contractId"] in sim.state.rentals
