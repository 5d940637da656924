"""Helpers of the job system tests and the jobs benchmark (no fixtures here).

Objects for the emulated API (a pool, jobs), the ComfyUI simulator behind a
GpuInstance, and the operator run embedded with injected dependencies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import SecretStr
from waiting import eventually

from warmpool.operator import main
from warmpool.operator.deps import Deps
from warmpool.operator.settings import OperatorSettings
from warmpool.sim.cluster import RunningCluster
from warmpool.sim.comfyui import DEFAULT_MODELS
from warmpool.sim.vastai import VastaiServer, start_vastai
from warmpool.sim.vastai_state import Timing

API = "warmpool.dev/v1alpha1"
API_KEY = "sim-key-jobs-0123456789"
GPU = "RTX 4090"
#: The GPU models the default pool accepts (the simulator's catalogue has ~25 such offers).
GPUS = ["RTX 4090", "RTX 3090", "RTX 5090", "RTX A6000"]


async def start_jobs_vastai(
    *,
    step_seconds: float = 0.15,
    time_scale: float = 240.0,
    seed: int = 11,
    extra_models: dict[str, list[str]] | None = None,
) -> VastaiServer:
    """The Vast.ai simulator with fast boots; its ComfyUI simulators run ``step_seconds``
    (simulated) per sampler step and hold the default models plus ``extra_models`` (by
    folder)."""
    timing = Timing(loading_after=(1.0, 2.0), pull=(4.0, 8.0), ports_after=(0.0, 1.0))
    options: dict[str, Any] = {"step_seconds": step_seconds, "load_seconds": 1.0,
                               "node_seconds": 0.01}  # fmt: skip
    if extra_models:
        models = {k: list(v) for k, v in DEFAULT_MODELS.items()}
        for folder, files in extra_models.items():
            have = models.setdefault(folder, [])
            have.extend(f for f in files if f not in have)
        options["models"] = models
    return await start_vastai(api_key=API_KEY, time_scale=time_scale, seed=seed, timing=timing,
                              comfy_options=options)  # fmt: skip


def pool_body(
    name: str, *, replicas: int, gpus: list[str] | None = None, **spec: Any
) -> dict[str, Any]:
    """A pool of a few GPU models (or ``gpus``), short timeouts, a one-step canary."""
    jobs = {"concurrencyPerInstance": 1, "stallTimeout": "2s", "maxAttempts": 3,
            **spec.pop("jobs", {})}  # fmt: skip
    body: dict[str, Any] = {
        "replicas": replicas, "idleTimeout": "1s", "hedge": 0,
        "offer": {"gpuNames": gpus or GPUS, "maxPricePerHour": 5.0, "minReliability": 0.9,
                  "verifiedOnly": False},
        "template": {"diskGb": 50},
        "readiness": {"timeout": "60s", "initialBackoff": "100ms", "maxBackoff": "300ms",
                      "canary": {"enabled": True, "steps": 1, "size": 64, "timeout": "30s"}},
        "failurePolicy": {"loadingTimeout": "60s", "hostCooldown": "1h"},
        "jobs": jobs, **spec,
    }  # fmt: skip
    return {"apiVersion": API, "kind": "GpuPool",
            "metadata": {"name": name, "namespace": "default"}, "spec": body}  # fmt: skip


def job_body(name: str, pool: str, **spec: Any) -> dict[str, Any]:
    """A small image job (64×64, 4 steps unless told)."""
    base = {"pool": pool, "prompt": f"a lighthouse at dusk ({name})", "quality": "low",
            "width": 64, "height": 64, "steps": 4, "seed": 1, **spec}  # fmt: skip
    return {"apiVersion": API, "kind": "GenerationJob",
            "metadata": {"name": name, "namespace": "default"}, "spec": base}  # fmt: skip


def job(cluster: RunningCluster, name: str) -> dict[str, Any]:
    return cluster.get(API, "GenerationJob", name, namespace="default") or {}


def status(cluster: RunningCluster, name: str) -> dict[str, Any]:
    return dict(job(cluster, name).get("status") or {})


def phase(cluster: RunningCluster, name: str) -> str:
    return str(status(cluster, name).get("phase") or "")


def ready_instances(cluster: RunningCluster) -> list[dict[str, Any]]:
    return [i for i in cluster.list(API, "GpuInstance", "default")
            if (i.get("status") or {}).get("phase") == "Ready"]  # fmt: skip


def instance_phases(cluster: RunningCluster) -> list[tuple[str, str, str]]:
    """Every GpuInstance's name, phase and reason (for failure messages)."""
    found = []
    for i in cluster.list(API, "GpuInstance", "default"):
        s = i.get("status") or {}
        found.append((i["metadata"]["name"], str(s.get("phase")), str(s.get("reason") or "")))
    return found


def comfy_of(sim: VastaiServer, instance: dict[str, Any]) -> Any:
    """The ComfyUI simulator behind a GpuInstance (through its Vast.ai contract)."""
    contract = (instance.get("status") or {}).get("contractId")
    rental = sim.state.rentals.get(contract)
    return rental.comfy if rental is not None else None


def settings(artifacts_url: str, vastai_url: str, **overrides: Any) -> OperatorSettings:
    values: dict[str, Any] = {
        "vastai_url": vastai_url, "vastai_api_key": SecretStr(API_KEY),
        "vastai_timeout": 2.0, "vastai_deadline": 10.0, "reconcile_interval": 1.0,
        "probe_interval": 0.2, "inventory_refresh": 0.3, "offer_cache": 0.5,
        "orphan_grace": 30.0, "artifacts_url": artifacts_url, "comfy_timeout": 5.0,
        "allowed_machine_networks": ["127.0.0.0/8"],  # the simulators' machines
        **overrides,
    }  # fmt: skip
    return OperatorSettings(**values)


@contextlib.asynccontextmanager
async def operator(settings: OperatorSettings, *, artifacts: Any = None) -> AsyncIterator[Deps]:
    """Run the operator embedded until the block exits; yields its memo."""
    deps = main.make_deps(settings)
    deps.artifacts = artifacts
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(main.run(settings, stop_flag=stop, ready_flag=ready,
                                        health=False, deps=deps))  # fmt: skip
    try:
        await eventually(lambda: ready.is_set() or task.done(), what="operator ready")
        if task.done():
            task.result()
        yield deps
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


#: Terminal phases of a GenerationJob.
DONE = ("Succeeded", "Failed", "Cancelled")


async def ready(cluster: RunningCluster, count: int) -> list[dict[str, Any]]:
    """Wait for at least ``count`` Ready instances; return them."""
    found: list[dict[str, Any]] = await eventually(
        lambda: len(ready_instances(cluster)) >= count and ready_instances(cluster),
        timeout=60, what=f"{count} ready instances", state=lambda: instance_phases(cluster),
    )  # fmt: skip
    return found
