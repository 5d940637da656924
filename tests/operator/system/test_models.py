"""Model provisioning end to end: the real operator, the emulated API, the Vast.ai simulator
whose machines run the real provisioning script against a local model server."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from factories import pool_body
from model_server import ModelServer, Route
from prometheus_client import REGISTRY
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer

API = "warmpool.dev/v1alpha1"
HF_TOKEN = "hf_e2eSECRETtoken0123456789"
CKPT = os.urandom(150_000)
LORA = os.urandom(50_000)


@pytest.fixture
def models() -> Iterator[ModelServer]:
    with ModelServer() as s:
        yield s


def secret(name: str, token: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"token": base64.b64encode(token.encode()).decode()}}  # fmt: skip


def pool_status(cluster: RunningCluster, name: str) -> dict[str, Any]:
    pool = cluster.get(API, "GpuPool", name, namespace="default") or {}
    return dict(pool.get("status") or {})


def condition(cluster: RunningCluster, pool: str, ctype: str) -> dict[str, Any]:
    found = [c for c in pool_status(cluster, pool).get("conditions") or [] if c["type"] == ctype]
    return found[0] if found else {}


def rentals_ever(sim: VastaiServer) -> list[Any]:
    return [*sim.state.rentals.values(), *sim.state.destroyed]


def model_pool(name: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return pool_body(name, replicas=1, template={"diskGb": 50, "models": list(entries),
                                                 "modelStallTimeout": "5s"})  # fmt: skip


async def test_two_models_one_behind_a_token_one_with_a_sha256_reach_ready(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any, models: ModelServer
) -> None:
    ckpt = Route(data=CKPT, token=HF_TOKEN, redirect_to_cdn="/cdn/ckpt")
    lora = Route(data=LORA)
    cluster.create(secret("hf", HF_TOKEN))
    cluster.create(model_pool(
        "hf",
        {"folder": "checkpoints", "file": "mine.safetensors", "url": models.add("/r/ckpt", ckpt),
         "sizeBytes": len(CKPT), "tokenSecret": {"name": "hf", "key": "token"}},
        {"folder": "loras", "file": "detail.safetensors", "url": models.add("/r/lora", lora),
         "sha256": lora.sha256},
    ))  # fmt: skip
    async with run_operator(vastai_url=vastai_sim.url):
        await eventually(lambda: pool_status(cluster, "hf").get("readyReplicas") == 1,
                         timeout=90, what="a Ready instance with both models")  # fmt: skip
        (inst,) = cluster.list(API, "GpuInstance", "default")
        assert [(m["file"], m["phase"], m["bytesDone"]) for m in inst["status"]["models"]] == [
            ("mine.safetensors", "Present", len(CKPT)),
            ("detail.safetensors", "Present", len(LORA)),
        ]
        assert condition(cluster, "hf", "ModelsAvailable")["status"] == "True"
        (rental,) = rentals_ever(vastai_sim)
        assert rental.workspace is not None
        landed = rental.workspace / "ComfyUI" / "models"
        assert (landed / "loras" / "detail.safetensors").read_bytes() == LORA
        assert (landed / "checkpoints" / "mine.safetensors").read_bytes() == CKPT
        step = REGISTRY.get_sample_value(
            "warmpool_ready_phase_seconds_count",
            {"namespace": "default", "pool": "hf", "step": "models"},
        )
        assert step is not None and step >= 1
    # The token reached the machine as an environment variable ...
    assert HF_TOKEN in rental.env.values()
    # ... the origin only, never the CDN it redirects to; and never the cluster's objects.
    assert [s.authorization for s in models.seen if s.host == "127.0.0.1" and s.path == "/r/ckpt"]
    assert all(s.authorization is None for s in models.seen if s.host == "127.0.0.2")
    for kind in ("GpuPool", "GpuInstance"):
        assert HF_TOKEN not in json.dumps(cluster.list(API, kind, "default"))
    events = json.dumps(cluster.list("v1", "Event", "default"))
    assert HF_TOKEN not in events


async def test_a_wrong_sha256_replaces_the_instance_with_model_checksum_mismatch(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any, models: ModelServer
) -> None:
    cluster.create(model_pool(
        "bad-sum",
        {"folder": "loras", "file": "x.safetensors", "url": models.add("/x", Route(data=LORA)),
         "sha256": "0" * 64},
    ))  # fmt: skip
    async with run_operator(vastai_url=vastai_sim.url):

        def replaced() -> bool:
            recent = pool_status(cluster, "bad-sum").get("recentRentals") or []
            failed = [r for r in recent if r["reason"] == "ModelChecksumMismatch"]
            return bool(failed) and len(rentals_ever(vastai_sim)) >= 2

        await eventually(replaced, timeout=90, what="a replacement after a checksum mismatch")
        # Not the host's fault: no cool-down; not the pool's: it keeps renting.
        assert pool_status(cluster, "bad-sum").get("hostFailures") in (None, [])
        assert condition(cluster, "bad-sum", "ModelsAvailable")["status"] == "True"


async def test_a_401_stops_renting_within_two_rentals_and_reports_models_available_false(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any, models: ModelServer
) -> None:
    cluster.create(secret("hf-wrong", "hf_not_the_right_token"))
    url = models.add("/gated", Route(data=CKPT, token=HF_TOKEN))
    cluster.create(model_pool(
        "gated",
        {"folder": "checkpoints", "file": "gated.safetensors", "url": url,
         "tokenSecret": {"name": "hf-wrong", "key": "token"}},
    ))  # fmt: skip
    async with run_operator(vastai_url=vastai_sim.url):
        await eventually(
            lambda: condition(cluster, "gated", "ModelsAvailable").get("status") == "False",
            timeout=90, what="ModelsAvailable=False",
        )  # fmt: skip
        cond = condition(cluster, "gated", "ModelsAvailable")
        assert cond["reason"] == "ModelAuthFailed"
        assert cond["message"].startswith("checkpoints/gated.safetensors: HTTP 401")

        def pending_for_models() -> bool:
            found = cluster.list(API, "GpuInstance", "default")
            return any((i.get("status") or {}).get("reason") == "ModelsUnavailable" for i in found)

        await eventually(pending_for_models, timeout=30, what="an instance held back")
        count = len(rentals_ever(vastai_sim))
        # The operator keeps working (listing rentals, reconciling) and rents nothing more.
        calls = sum(vastai_sim.state.requests.values())
        await eventually(lambda: sum(vastai_sim.state.requests.values()) >= calls + 10,
                         timeout=30, what="the operator still polling Vast.ai")  # fmt: skip
        assert count <= 2 and len(rentals_ever(vastai_sim)) == count
        assert pool_status(cluster, "gated").get("hostFailures") in (None, [])


async def test_a_download_that_keeps_progressing_outlasts_the_readiness_timeout(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any, models: ModelServer
) -> None:
    """A large model over a slow link took longer than ``readiness.timeout`` and the instance
    was killed as ReadinessTimeout, then the next one too, each rental paid for: while bytes
    keep landing, the timeout counts from the last progress (a stall is the provisioning
    step's ModelDownloadStalled)."""
    slow = Route(data=CKPT, delay=1.0, chunk=16 * 1024)  # 150 kB in ~10 s
    body = model_pool(
        "slow",
        {"folder": "checkpoints", "file": "big.safetensors", "url": models.add("/big", slow)},
    )
    body["spec"]["readiness"]["timeout"] = "4s"
    cluster.create(body)
    async with run_operator(vastai_url=vastai_sim.url):
        await eventually(
            lambda: pool_status(cluster, "slow").get("readyReplicas") == 1,
            timeout=90,
            what="Ready after a download longer than the timeout",
        )
        (inst,) = cluster.list(API, "GpuInstance", "default")
        assert inst["status"]["modelsProgressAt"]
        running = inst["status"]["runningAt"]
        ready = inst["status"]["readyAt"]
        assert running < ready
    assert len(rentals_ever(vastai_sim)) == 1
    recent = pool_status(cluster, "slow").get("recentRentals") or []
    assert all(r["reason"] != "ReadinessTimeout" for r in recent)
