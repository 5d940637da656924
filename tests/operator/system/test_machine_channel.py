"""The channel to each machine's ComfyUI: TLS with a pinned per-instance certificate (T4).

The story: the operator spoke plain HTTP to every rented machine across the internet, so
the bearer token, the prompts and the outputs could be read and changed on the path. Now
each rental gets its own key pair and certificate (in its Secret and its create request);
the Vast.ai simulator's machine runs the operator's onstart line for real, which installs
the pair where Vast.ai's Instance Portal serves it, and the rental's ComfyUI answers HTTPS
with it. The operator trusts that certificate only: a host that downgrades to HTTP or
serves another certificate gets no request (no token) and is replaced and cooled down.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jobsys
import pytest
from jobsys import API, DONE, job_body, phase, pool_body, ready, status
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer
from warmpool.sim.vastai_state import Fault


def secret_pem(cluster: RunningCluster, instance: str, key: str) -> str:
    secret = cluster.get("v1", "Secret", f"{instance}-comfy-token", namespace="default") or {}
    return base64.b64decode((secret.get("data") or {})[key]).decode()


def served_certificate(url: str) -> str:
    parts = urlsplit(url)
    return ssl.get_server_certificate((parts.hostname or "", parts.port or 443))


def _der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


async def test_jobs_run_over_tls_with_the_instances_own_certificate(
    cluster: RunningCluster, kubeconfig: Path, sim: VastaiServer, artifacts_url: str
) -> None:
    cluster.create(pool_body("sealed", replicas=1))
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)):
        (inst,) = await ready(cluster, 1)
        name, url = inst["metadata"]["name"], inst["status"]["comfyUrl"]
        assert url.startswith("https://"), url
        comfy = jobsys.comfy_of(sim, inst)
        assert comfy.url.startswith("https://")
        pinned = secret_pem(cluster, name, "tls.crt")
        served = await asyncio.to_thread(served_certificate, url)
        assert _der(served) == _der(pinned)  # the very certificate made for this instance
        rental = sim.state.rentals[inst["status"]["contractId"]]
        assert rental.env["ENABLE_HTTPS"] == "true"
        assert "BEGIN" not in (rental.onstart or "")  # the pair travels in env chunks only
        cluster.create(job_body("sealed-1", "sealed"))
        await eventually(lambda: phase(cluster, "sealed-1") in DONE, timeout=30, what="done")
        assert status(cluster, "sealed-1")["phase"] == "Succeeded"
        assert comfy.requests["GET /view"] >= 1  # the output came over the TLS channel
        async with httpx.AsyncClient() as plain:  # the port speaks TLS only
            with pytest.raises(httpx.TransportError):
                await plain.get(url.replace("https://", "http://") + "/system_stats")
        async with httpx.AsyncClient() as public:  # and no public CA vouches for it
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await public.get(url + "/system_stats")


@pytest.mark.parametrize("fault", ["plain_http", "foreign_cert"])
async def test_a_host_that_downgrades_or_swaps_the_certificate_gets_no_token(
    cluster: RunningCluster, kubeconfig: Path, sim: VastaiServer, artifacts_url: str, fault: str
) -> None:
    sim.state.add_fault(Fault(kind=fault, count=1))
    seen: dict[int, Any] = {}
    machines: dict[int, int] = {}  # read while the rental exists: it is gone once destroyed

    def hostile_started() -> bool:
        for rental in sim.state.rentals.values():
            if fault in rental.flags and rental.comfy is not None:
                seen[rental.id] = rental.comfy
                machines[rental.id] = rental.machine.machine_id
        return bool(seen)

    cluster.create(pool_body("wary", replicas=1))
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)):
        await eventually(hostile_started, timeout=60, what="the hostile machine up")
        (bad,) = seen
        ledger = await eventually(
            lambda: [f for f in (cluster.get(API, "GpuPool", "wary", namespace="default")
                                 or {}).get("status", {}).get("hostFailures", [])
                     if f["reason"] == "MachineChannelInsecure"],
            timeout=60, what="the hostile instance replaced and its host cooled down",
        )  # fmt: skip
        assert ledger[0]["machineId"] == machines[bad]
        (good,) = await ready(cluster, 1)  # a replacement on an honest machine
        assert good["status"]["contractId"] != bad
    comfy = seen[bad]
    assert not any(k.startswith(("GET /system_stats", "GET /models")) for k in comfy.requests), (
        comfy.requests  # no request reached the machine: the token was never sent
    )
