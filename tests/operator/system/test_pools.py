"""Pools end to end: the real operator, the emulated API, the Vast.ai and ComfyUI simulators."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from factories import pool_body
from prometheus_client import REGISTRY
from waiting import eventually

from warmpool.crds.gpupool import GpuPoolSpec
from warmpool.operator.adapters import machine_tls
from warmpool.operator.decisions import channel
from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer, start_vastai
from warmpool.sim.vastai_catalogue import generate_machines
from warmpool.sim.vastai_state import Fault

API_KEY = "sim-key-0123456789"

API = "warmpool.dev/v1alpha1"


def rentals(sim: VastaiServer, prefix: str = "warmpool.default.") -> list[Any]:
    return [r for r in sim.state.rentals.values() if (r.label or "").startswith(prefix)]


def pool_status(cluster: RunningCluster, name: str) -> dict[str, Any]:
    pool = cluster.get(API, "GpuPool", name, namespace="default") or {}
    return dict(pool.get("status") or {})


async def scale(http: httpx.AsyncClient, name: str, replicas: int) -> None:
    """What `kubectl scale gpupool/<name> --replicas=N` does: patch the scale subresource."""
    response = await http.patch(
        f"/apis/warmpool.dev/v1alpha1/namespaces/default/gpupools/{name}/scale",
        json={"spec": {"replicas": replicas}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    response.raise_for_status()


async def test_scale_zero_two_one_zero(
    cluster: RunningCluster,
    cluster_http: httpx.AsyncClient,
    vastai_sim: VastaiServer,
    run_operator: Any,
) -> None:
    cluster.create(pool_body("sdxl"))
    async with run_operator(vastai_url=vastai_sim.url):
        await scale(cluster_http, "sdxl", 2)
        await eventually(lambda: pool_status(cluster, "sdxl").get("readyReplicas") == 2,
                         timeout=60, what="two ready instances")  # fmt: skip
        assert len(rentals(vastai_sim)) == 2
        await scale(cluster_http, "sdxl", 1)
        await eventually(lambda: len(rentals(vastai_sim)) == 1, timeout=30, what="one rental")
        await eventually(lambda: pool_status(cluster, "sdxl").get("readyReplicas") == 1,
                         timeout=30, what="one ready")  # fmt: skip
        await scale(cluster_http, "sdxl", 0)
        await eventually(lambda: not rentals(vastai_sim), timeout=30, what="no rentals")
        await eventually(lambda: not cluster.list(API, "GpuInstance", "default"),
                         timeout=30, what="no GpuInstances")  # fmt: skip
        await eventually(lambda: pool_status(cluster, "sdxl")["replicas"] == 0,
                         what="status.replicas back to 0")  # fmt: skip


def instances(cluster: RunningCluster) -> list[dict[str, Any]]:
    return cluster.list(API, "GpuInstance", "default")


def conditions(cluster: RunningCluster, name: str) -> dict[str, str]:
    return {c["type"]: c["status"] for c in pool_status(cluster, name).get("conditions") or []}


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def create_calls(sim: VastaiServer) -> int:
    return sum(n for route, n in sim.state.requests.items() if "/asks/" in route)


def all_rentals_ever(sim: VastaiServer) -> int:
    return len(sim.state.rentals) + len(sim.state.destroyed)


async def test_ready_only_after_models_are_present(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any
) -> None:
    model = {"folder": "checkpoints", "file": "flux1-dev.safetensors"}
    cluster.create(pool_body("flux", replicas=1, template={"diskGb": 50, "models": [model]}))
    async with run_operator(vastai_url=vastai_sim.url):

        def waiting_for_model() -> bool:
            found = instances(cluster)
            probe = ((found[0].get("status") or {}).get("lastProbe") or {}) if found else {}
            return probe.get("reason") == "model_missing"

        await eventually(waiting_for_model, timeout=30, what="a probe reporting the model missing")
        assert pool_status(cluster, "flux").get("readyReplicas", 0) == 0
        assert conditions(cluster, "flux")["Ready"] == "False"
        (rental,) = rentals(vastai_sim)
        assert rental.comfy is not None
        rental.comfy.add_model("checkpoints", "flux1-dev.safetensors")
        await eventually(lambda: pool_status(cluster, "flux").get("readyReplicas") == 1,
                         timeout=30, what="ready once the model is there")  # fmt: skip
    status = instances(cluster)[0]["status"]
    assert status["modelsAt"] >= status["answeringAt"]
    assert status["readyAt"] >= status["modelsAt"]


async def test_no_space_left_is_replaced_and_its_machine_cools_down(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any
) -> None:
    vastai_sim.state.add_fault(Fault(kind="no_space", count=1))
    cluster.create(pool_body("disk", replicas=1))
    async with run_operator(vastai_url=vastai_sim.url) as settings:
        first = await eventually(lambda: rentals(vastai_sim), what="a first rental")
        bad = first[0]
        await eventually(lambda: "no space left" in (bad.status_msg or ""), timeout=30,
                         what="the no-space failure")  # fmt: skip
        # Destroyed within two reconcile intervals of the failure being visible.
        await eventually(lambda: bad.id not in vastai_sim.state.rentals,
                         timeout=2 * settings.reconcile_interval + 1,
                         what="the bad rental gone")  # fmt: skip
        await eventually(lambda: pool_status(cluster, "disk").get("readyReplicas") == 1,
                         timeout=30, what="a replacement ready")  # fmt: skip
        (good,) = rentals(vastai_sim)
        assert good.machine.machine_id != bad.machine.machine_id
        ledger = pool_status(cluster, "disk")["hostFailures"]
        assert [(h["machineId"], h["reason"]) for h in ledger] == [
            (bad.machine.machine_id, "StatusMessageFailure")
        ]


async def test_stuck_loading_is_replaced_after_the_loading_timeout(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any
) -> None:
    before = counter(
        "warmpool_terminations_total", namespace="default", pool="stuck", reason="LoadingTimeout"
    )
    vastai_sim.state.add_fault(Fault(kind="stuck_loading", count=1))
    cluster.create(pool_body("stuck", replicas=1, failurePolicy={"loadingTimeout": "3s"}))
    async with run_operator(vastai_url=vastai_sim.url):
        first = (await eventually(lambda: rentals(vastai_sim), what="a first rental"))[0]
        await eventually(lambda: first.id not in vastai_sim.state.rentals, timeout=15,
                         what="the stuck rental destroyed")  # fmt: skip
        await eventually(lambda: pool_status(cluster, "stuck").get("readyReplicas") == 1,
                         timeout=30, what="a replacement ready")  # fmt: skip
    # At least the broken rental's; on a loaded machine a healthy replacement may pass the
    # test's 3 s limit as well and be replaced in its turn (the operator is right to).
    terminated = counter(
        "warmpool_terminations_total", namespace="default", pool="stuck", reason="LoadingTimeout"
    )
    assert terminated >= before + 1


async def test_comfy_never_answering_is_replaced_after_the_readiness_timeout(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any
) -> None:
    before = counter(
        "warmpool_terminations_total", namespace="default", pool="mute", reason="ReadinessTimeout"
    )
    original = vastai_sim.state.comfy
    assert original is not None
    broken: list[Any] = []

    async def first_one_mute(token: str | None, clock: Any, workspace: Any, **how: Any) -> Any:
        server = await original(token, clock, workspace, **how)  # host, tls
        if not broken:
            server.slow_start(10**9)  # port open, ComfyUI never answers
            broken.append(server)
        return server

    vastai_sim.state.comfy = first_one_mute
    cluster.create(pool_body("mute", replicas=1, readiness={"timeout": "3s"}))
    async with run_operator(vastai_url=vastai_sim.url):
        first = (await eventually(lambda: rentals(vastai_sim), what="a first rental"))[0]
        await eventually(lambda: first.id not in vastai_sim.state.rentals, timeout=30,
                         what="the mute rental destroyed")  # fmt: skip
        await eventually(lambda: pool_status(cluster, "mute").get("readyReplicas") == 1,
                         timeout=30, what="a replacement ready")  # fmt: skip
    # At least the broken rental's; on a loaded machine a healthy replacement may pass the
    # test's 3 s limit as well and be replaced in its turn (the operator is right to).
    terminated = counter(
        "warmpool_terminations_total", namespace="default", pool="mute", reason="ReadinessTimeout"
    )
    assert terminated >= before + 1


async def test_ready_machine_going_offline_is_replaced(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any
) -> None:
    cluster.create(pool_body("flaky", replicas=1))
    async with run_operator(vastai_url=vastai_sim.url):
        await eventually(lambda: pool_status(cluster, "flaky").get("readyReplicas") == 1,
                         timeout=30, what="ready")  # fmt: skip
        (first,) = rentals(vastai_sim)
        vastai_sim.state.add_fault(Fault(kind="offline", instance_id=first.id))
        await eventually(lambda: first.id not in vastai_sim.state.rentals, timeout=30,
                         what="the offline rental destroyed")  # fmt: skip
        await eventually(
            lambda: pool_status(cluster, "flaky").get("readyReplicas") == 1
            and len(rentals(vastai_sim)) == 1,
            timeout=30, what="a replacement ready",
        )  # fmt: skip


async def test_rate_limits_and_server_errors_never_duplicate_rentals(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any
) -> None:
    state = vastai_sim.state
    state.add_fault(Fault(kind="rate_limit", rate=0.4, params={"retry_after": 0.1}))
    state.add_fault(Fault(kind="server_error", rate=0.3))
    state.add_fault(Fault(kind="create_lost", count=1))  # rented, but the answer is a 504
    cluster.create(pool_body("storm", replicas=2))
    async with run_operator(vastai_url=vastai_sim.url):
        await eventually(lambda: pool_status(cluster, "storm").get("readyReplicas") == 2,
                         timeout=60, what="two ready despite the storm")  # fmt: skip
    assert len(rentals(vastai_sim)) == 2
    assert all_rentals_ever(vastai_sim) == 2, "a rental was made twice"
    assert state.requests  # the storm really hit the API


async def test_rental_made_before_a_crash_is_adopted_not_duplicated(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any
) -> None:
    """The operator died between "create" and "write status": the next one adopts.

    What the dead operator had done: the instance's Secret (token and TLS pair) written,
    then the create call with that pair in its environment (``launch.create_request``)."""
    pool = cluster.create(pool_body("adopt", replicas=1))
    inst = cluster.create({
        "apiVersion": API, "kind": "GpuInstance",
        "metadata": {"name": "adopt-x1", "namespace": "default",
                     "labels": {"warmpool.dev/pool": "adopt"},
                     "ownerReferences": [{"apiVersion": API, "kind": "GpuPool", "name": "adopt",
                                          "uid": pool["metadata"]["uid"], "controller": True}]},
        "spec": {"pool": "adopt", "reason": "Warm",
                 "templateHash": GpuPoolSpec.model_validate(pool["spec"]).template.hash()},
    })  # fmt: skip
    label = f"warmpool.default.adopt.{inst['metadata']['uid']}"
    identity = machine_tls.new_identity("adopt-x1")
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": "adopt-x1-comfy-token", "namespace": "default"},
            "data": {
                "token": base64.b64encode(b"adopt-token-0123456789").decode(),
                "tls.crt": base64.b64encode(identity.cert_pem.encode()).decode(),
                "tls.key": base64.b64encode(identity.key_pem.encode()).decode(),
            },
        }
    )
    env = {
        "-p 8188:8188": "1",
        "OPEN_BUTTON_TOKEN": "adopt-token-0123456789",
        **channel.tls_env(identity.cert_pem, identity.key_pem),
    }
    async with httpx.AsyncClient(base_url=vastai_sim.url, headers={
        "Authorization": f"Bearer {API_KEY}"}) as http:  # fmt: skip
        offers = (await http.post("/api/v0/bundles/", json={"limit": 1})).json()["offers"]
        made = await http.put(f"/api/v0/asks/{offers[0]['id']}/",
                              json={"image": "vastai/comfyui:latest", "disk": 50, "label": label,
                                    "env": env, "onstart": channel.with_tls(None)})  # fmt: skip
        contract = made.json()["new_contract"]
    async with run_operator(vastai_url=vastai_sim.url):
        status = await eventually(
            lambda: (cluster.get(API, "GpuInstance", "adopt-x1", "default") or {}).get("status"),
            what="the instance status",
        )
        await eventually(lambda: pool_status(cluster, "adopt").get("readyReplicas") == 1,
                         timeout=30, what="ready")  # fmt: skip
    status = cluster.get(API, "GpuInstance", "adopt-x1", "default")["status"]  # type: ignore[index]
    assert status["contractId"] == contract
    assert [r.id for r in rentals(vastai_sim)] == [contract]
    assert all_rentals_ever(vastai_sim) == 1


async def test_orphaned_rental_is_destroyed(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any
) -> None:
    before = counter("warmpool_orphans_destroyed_total")
    async with httpx.AsyncClient(base_url=vastai_sim.url, headers={
        "Authorization": f"Bearer {API_KEY}"}) as http:  # fmt: skip
        offers = (await http.post("/api/v0/bundles/", json={"limit": 50})).json()["offers"]
        other = next(o for o in offers if o["machine_id"] != offers[0]["machine_id"])
        orphan = (
            await http.put(
                f"/api/v0/asks/{offers[0]['id']}/",
                json={
                    "image": "x",
                    "disk": 20,
                    "label": "warmpool.default.gone.4d1b5c7e-0000-4000-8000-000000000000",
                },
            )
        ).json()
        mine = (await http.put(f"/api/v0/asks/{other['id']}/", json={
            "image": "x", "disk": 20, "label": "someone-elses-box"})).json()  # fmt: skip
    async with run_operator(vastai_url=vastai_sim.url, orphan_grace=1.0):
        await eventually(lambda: orphan["new_contract"] not in vastai_sim.state.rentals,
                         timeout=15, what="the orphan destroyed")  # fmt: skip
    assert mine["new_contract"] in vastai_sim.state.rentals, "a rental that is not ours was touched"
    assert counter("warmpool_orphans_destroyed_total") == before + 1


async def test_paused_pool_destroys_everything_and_rents_nothing(
    cluster: RunningCluster,
    cluster_http: httpx.AsyncClient,
    vastai_sim: VastaiServer,
    run_operator: Any,
) -> None:
    cluster.create(pool_body("safe", replicas=2))
    async with run_operator(vastai_url=vastai_sim.url) as settings:
        await eventually(lambda: pool_status(cluster, "safe").get("readyReplicas") == 2,
                         timeout=60, what="two ready")  # fmt: skip
        await cluster_http.patch(
            "/apis/warmpool.dev/v1alpha1/namespaces/default/gpupools/safe",
            json={"spec": {"paused": True}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        await eventually(lambda: not rentals(vastai_sim),
                         timeout=settings.reconcile_interval + 2,
                         what="every rental destroyed")  # fmt: skip
        creates = create_calls(vastai_sim)
        await scale(cluster_http, "safe", 3)  # a spec change is reconciled at once...
        generation = cluster.get(API, "GpuPool", "safe", "default")["metadata"]["generation"]  # type: ignore[index]
        await eventually(
            lambda: (
                pool_status(cluster, "safe").get("observedGeneration") == generation
                and conditions(cluster, "safe").get("Paused") == "True"
            ),
            what="the paused pool reconciled at replicas 3",
        )
        assert create_calls(vastai_sim) == creates, "rented while paused"
        assert not rentals(vastai_sim)


async def test_budget_caps_rentals(cluster: RunningCluster, run_operator: Any) -> None:
    machines = generate_machines(11)
    for machine in machines:
        machine.dph_per_gpu, machine.storage_cost = 0.40, 0.0
    sim = await start_vastai(api_key=API_KEY, time_scale=240.0, seed=11, machines=machines)
    try:
        cluster.create(pool_body("cheap", replicas=4, offer={"maxPricePerHour": 1.0},
                                 budget={"maxHourlySpend": 1.0}))  # fmt: skip
        async with run_operator(vastai_url=sim.url):
            await eventually(lambda: pool_status(cluster, "cheap").get("readyReplicas") == 2,
                             timeout=60, what="two ready")  # fmt: skip
            await eventually(lambda: conditions(cluster, "cheap").get("BudgetExceeded") == "True",
                             what="BudgetExceeded")  # fmt: skip
            assert all_rentals_ever(sim) == 2
            assert pool_status(cluster, "cheap")["pricePerHour"] == pytest.approx(0.8)
    finally:
        await sim.stop()


async def test_hedged_cold_start_keeps_the_first_ready(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any
) -> None:
    cluster.create(pool_body("hedged", replicas=1, hedge=1))
    async with run_operator(vastai_url=vastai_sim.url):
        await eventually(lambda: all_rentals_ever(vastai_sim) == 2, what="two candidates")
        await eventually(
            lambda: pool_status(cluster, "hedged").get("readyReplicas") == 1
            and len(rentals(vastai_sim)) == 1,
            timeout=60, what="the loser released",
        )  # fmt: skip
    assert all_rentals_ever(vastai_sim) == 2


def learned_history(now: datetime) -> list[dict[str, Any]]:
    """Two whole days on which jobs came in this UTC hour and the next, and nothing else."""
    days = []
    for back in (2, 1):
        hours = [0] * 24
        hours[now.hour] = hours[(now.hour + 1) % 24] = 10
        days.append({"day": (now - timedelta(days=back)).date().isoformat(), "hours": hours})
    return days


async def test_learned_warm_up_keeps_the_usual_busy_hour_warm(
    cluster: RunningCluster,
    cluster_http: httpx.AsyncClient,
    vastai_sim: VastaiServer,
    run_operator: Any,
) -> None:
    """A pool whose history says this hour is busy is warmed up with no job in sight;
    the same history with the learned warm-up off (coverage 0) rents nothing."""
    history = learned_history(datetime.now(UTC))
    for name, coverage in (("learned", 0.95), ("rate-only", 0)):
        cluster.create(pool_body(name, maxReplicas=2,
                                 warmup={"replicas": 1, "coverage": coverage}))  # fmt: skip
        response = await cluster_http.patch(
            f"/apis/warmpool.dev/v1alpha1/namespaces/default/gpupools/{name}/status",
            json={"status": {"arrivals": history}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        response.raise_for_status()
    async with run_operator(vastai_url=vastai_sim.url):
        await eventually(lambda: pool_status(cluster, "learned").get("readyReplicas") == 1,
                         timeout=60, what="the learned busy hour warmed up")  # fmt: skip
        # A reconcile creates its instances before it writes the pool's status.
        await eventually(lambda: pool_status(cluster, "rate-only").get("observedGeneration"),
                         what="the rate-only pool reconciled")  # fmt: skip
        assert not [i for i in instances(cluster) if i["spec"]["pool"] == "rate-only"]
    kept = [d["day"] for d in pool_status(cluster, "learned")["arrivals"]]
    assert kept[:2] == [d["day"] for d in history], "the operator dropped the history"
    warm = instances(cluster)
    assert [i["spec"]["reason"] for i in warm] == ["Warm"]


async def test_a_finished_job_keeps_the_warm_up_going(
    cluster: RunningCluster,
    cluster_http: httpx.AsyncClient,
    vastai_sim: VastaiServer,
    run_operator: Any,
) -> None:
    """The rate rule counts every job submitted in its window, finished ones too (read
    from the operator's index of job creation times): one Succeeded job a moment ago
    keeps a machine warm with nothing queued."""
    cluster.create(pool_body("recent", maxReplicas=2,
                             warmup={"replicas": 1, "coverage": 0}))  # fmt: skip
    cluster.create({"apiVersion": API, "kind": "GenerationJob",
                    "metadata": {"name": "done", "namespace": "default"},
                    "spec": {"pool": "recent", "prompt": "a lighthouse"}})  # fmt: skip
    response = await cluster_http.patch(
        "/apis/warmpool.dev/v1alpha1/namespaces/default/generationjobs/done/status",
        json={"status": {"phase": "Succeeded"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    response.raise_for_status()
    async with run_operator(vastai_url=vastai_sim.url):
        await eventually(lambda: pool_status(cluster, "recent").get("readyReplicas") == 1,
                         timeout=60, what="warm after a recent job")  # fmt: skip
    assert pool_status(cluster, "recent").get("queuedJobs") == 0
    assert [i["spec"]["reason"] for i in instances(cluster)] == ["Warm"]


async def test_deleting_the_pool_destroys_every_rental_and_object(
    cluster: RunningCluster,
    cluster_http: httpx.AsyncClient,
    vastai_sim: VastaiServer,
    run_operator: Any,
) -> None:
    cluster.create(pool_body("doomed", replicas=2))
    async with run_operator(vastai_url=vastai_sim.url):
        await eventually(lambda: pool_status(cluster, "doomed").get("readyReplicas") == 2,
                         timeout=60, what="two ready")  # fmt: skip
        response = await cluster_http.delete(
            "/apis/warmpool.dev/v1alpha1/namespaces/default/gpupools/doomed"
        )
        assert response.status_code in (200, 202)
        await eventually(lambda: not rentals(vastai_sim), timeout=30, what="no rentals")
        await eventually(lambda: not instances(cluster), timeout=30, what="no GpuInstances")
        await eventually(lambda: not cluster.get(API, "GpuPool", "doomed", "default"),
                         timeout=30, what="the pool gone")  # fmt: skip
        await eventually(lambda: not [s for s in cluster.list("v1", "Secret", "default")
                                      if s["metadata"]["name"].endswith("-comfy-token")],
                         timeout=30, what="token Secrets gone")  # fmt: skip
