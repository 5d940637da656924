"""Studio benchmark: job submissions per second, and SSE fan-out latency.

Runs the emulated Kubernetes API and the studio (uvicorn, loopback) in this process:

1. submissions: ``POST /api/v1/generations`` from N concurrent clients, every request
   creating a GenerationJob in the emulated API; reports accepted jobs per second.
2. fan-out: L concurrent progress streams (SSE) on ONE job, fed by the studio's single
   shared watch; the job's status is patched U times and each listener's receipt time
   of each update is compared with the time the patch was sent (p50/p99/max).

The clients share the event loop with the server, so figures include client-side
parsing; they are a floor for the service, not a ceiling. Prints the figures and
writes ``bench/results/studio.json``. No assertions.

    .venv/bin/python bench/studio.py [--jobs 400] [--concurrency 16] [--listeners 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from warmpool.api.app import create_app
from warmpool.api.settings import StudioSettings
from warmpool.operator.adapters import kube
from warmpool.sim.cluster import start_cluster

NS = "default"
POOL = {
    "metadata": {"name": "sdxl", "namespace": NS},
    "spec": {"replicas": 1, "offer": {"maxPricePerHour": 0.6}},
}
RESULTS = Path(__file__).resolve().parent / "results" / "studio.json"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def submissions(url: str, jobs: int, concurrency: int) -> dict[str, Any]:
    body = {"pool": "sdxl", "prompt": "a lighthouse at dusk", "quality": "low"}
    latencies: list[float] = []
    codes: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(jobs):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:

        async def worker() -> None:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                r = await http.post("/api/v1/generations", json=body)
                latencies.append(time.perf_counter() - started)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "jobs": jobs,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "jobs_per_second": round(codes.get(201, 0) / elapsed, 1),
        "status_codes": {str(k): v for k, v in codes.items()},
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "latency_p99_ms": round(pct(latencies, 0.99) * 1000, 1),
    }


async def fanout(
    url: str, client: kube.KubeClient, app: Any, listeners: int, updates: int
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=listeners + 10)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:
        r = await http.post("/api/v1/generations", json={"pool": "sdxl", "prompt": "fan-out"})
        name = r.json()["name"]
        sent: dict[int, float] = {}
        received: list[float] = []
        delivered = [0] * listeners

        async def listen(i: int) -> None:
            async with http.stream("GET", f"/api/v1/generations/{name}/events") as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    now = time.perf_counter()
                    data = json.loads(line[5:])
                    value = data.get("value")
                    if data.get("phase") == "Running" and value in sent:
                        received.append(now - sent[value])
                        delivered[i] += 1

        tasks = [asyncio.create_task(listen(i)) for i in range(listeners)]
        hub = app.state.studio.hub
        deadline = time.perf_counter() + 120
        while hub.listener_count < listeners and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        connected = hub.listener_count
        watches = hub.watches_started
        for value in range(1, updates + 1):
            progress = {"value": value, "max": updates, "percent": value * 100 // updates}
            sent[value] = time.perf_counter()
            await client.patch(
                kube.GENERATIONJOBS,
                name,
                NS,
                {"status": {"phase": "Running", "progress": progress}},
                subresource="status",
            )
            await asyncio.sleep(0.1)
        await client.patch(
            kube.GENERATIONJOBS, name, NS, {"status": {"phase": "Succeeded"}}, subresource="status"
        )
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    return {
        "listeners": listeners,
        "connected": connected,
        "updates": updates,
        "events_expected": listeners * updates,
        "events_delivered": sum(delivered),
        "kubernetes_watches_opened_during_fanout": hub.watches_started - watches,
        "latency_p50_ms": round(statistics.median(received) * 1000, 1) if received else None,
        "latency_p99_ms": round(pct(received, 0.99) * 1000, 1) if received else None,
        "latency_max_ms": round(max(received) * 1000, 1) if received else None,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    cluster = await start_cluster(request_log_limit=1000)
    async with cluster, kube.KubeClient(cluster.url) as client:
        await client.create(kube.GPUPOOLS, POOL, NS)
        settings = StudioSettings(
            _env_file=None,  # type: ignore[call-arg]
            studio_auth="none",  # the code default is token
            studio_max_queued_jobs=10**6,
            studio_requests_per_minute=10**6,
            artifacts_url=f"file://{tempfile.mkdtemp(prefix='warmpool-bench-')}",
        )
        app = create_app(settings, kube=client)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", backlog=4096)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        try:
            sub = await submissions(url, args.jobs, args.concurrency)
            print(
                f"submissions: {sub['jobs_per_second']} jobs/s "
                f"({sub['jobs']} jobs, {sub['concurrency']} clients, "
                f"p50 {sub['latency_p50_ms']} ms, p99 {sub['latency_p99_ms']} ms)"
            )
            fan = await fanout(url, client, app, args.listeners, args.updates)
            print(
                f"SSE fan-out: {fan['connected']} listeners, "
                f"{fan['events_delivered']}/{fan['events_expected']} events, "
                f"p50 {fan['latency_p50_ms']} ms, p99 {fan['latency_p99_ms']} ms, "
                f"max {fan['latency_max_ms']} ms, "
                f"extra watches {fan['kubernetes_watches_opened_during_fanout']}"
            )
        finally:
            server.should_exit = True
            await serving
    return {"submissions": sub, "sse_fanout": fan}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--listeners", type=int, default=500)
    parser.add_argument("--updates", type=int, default=20)
    figures = asyncio.run(main(parser.parse_args()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {RESULTS}")
