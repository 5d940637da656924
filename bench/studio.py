"""Studio benchmark: submissions per second and SSE fan-out, each against a reference.

Three kinds of process, as in a real deployment: the emulated Kubernetes API, the studio
(uvicorn) and the clients (this process). Every figure is a ratio against a reference
measured in the same run, because absolute figures move with the machine:

1. **submissions**: ``POST /api/v1/generations`` from N concurrent clients, each creating
   a GenerationJob, against the same clients creating the same GenerationJob bodies
   directly in the emulated API (the one write a submission needs). Goal: ≥ 0.9.
2. **SSE fan-out**: L progress streams on one job, fed by the studio's one shared watch;
   the job's status is patched U times and each listener's receipt of each update is timed
   from the patch. The p99 at L listeners against the p99 at one listener, in rounds side
   by side (the median of the rounds' ratios). Goal: ≤ 3.

Prints the figures and writes ``bench/results/studio.json``. No assertions.

    .venv/bin/python bench/studio.py [--jobs 600] [--concurrency 16] [--listeners 500]
        [--updates 20] [--rounds 3] [--profile F]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

NS = "default"
POOL = {
    "apiVersion": "warmpool.dev/v1alpha1",
    "kind": "GpuPool",
    "metadata": {"name": "sdxl", "namespace": NS},
    "spec": {"replicas": 1, "offer": {"maxPricePerHour": 0.6}},
}
JOBS_PATH = f"/apis/warmpool.dev/v1alpha1/namespaces/{NS}/generationjobs"
RESULTS = Path(__file__).resolve().parent / "results" / "studio.json"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


# ----------------------------------------------------------------- the server processes


def _serve_until_told(
    conn: multiprocessing.connection.Connection, start: Any, run: Any = asyncio.run
) -> None:
    """Run ``start()`` (returns (url, stop)) under ``run``, send the URL, stop when the
    parent says so."""

    async def main() -> None:
        url, stop = await start()
        conn.send(url)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await stop()

    run(main())


def cluster_process(conn: multiprocessing.connection.Connection) -> None:
    from warmpool.sim.cluster import start_cluster

    async def start() -> tuple[str, Callable[[], Awaitable[None]]]:
        cluster = await start_cluster(request_log_limit=1000)
        async with httpx.AsyncClient(base_url=cluster.url) as http:
            pools = f"/apis/warmpool.dev/v1alpha1/namespaces/{NS}/gpupools"
            made = await http.post(pools, json=POOL)
            made.raise_for_status()
        return cluster.url, cluster.stop

    _serve_until_told(conn, start)


def studio_process(conn: multiprocessing.connection.Connection, cluster_url: str) -> None:
    import uvicorn
    import uvloop

    from warmpool.api.app import create_app
    from warmpool.api.settings import StudioSettings
    from warmpool.operator.adapters import kube

    async def start() -> tuple[str, Callable[[], Awaitable[None]]]:
        state = tempfile.mkdtemp(prefix="warmpool-bench-studio-")
        client = kube.KubeClient(cluster_url)
        settings = StudioSettings(
            _env_file=None,  # type: ignore[call-arg]
            studio_auth="none",  # the code default is token
            studio_max_queued_jobs=10**6,
            studio_requests_per_minute=10**6,
            artifacts_url=f"file://{state}/artifacts",
            studio_records_url=f"sqlite+aiosqlite:///{state}/records.db",
        )
        app = create_app(settings, kube=client)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", backlog=4096)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]

        async def stop() -> None:
            server.should_exit = True
            await serving
            await client.close()

        return f"http://127.0.0.1:{port}", stop

    # On uvloop, as ``warmpool-studio`` runs (uvicorn.run's loop "auto" picks it when
    # installed, and the package installs it).
    _serve_until_told(conn, start, uvloop.run)


class Child:
    """A server process started with ``spawn`` that reports its URL."""

    def __init__(self, target: Callable[..., None], *args: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(theirs, *args), daemon=True)
        self.proc.start()
        if not self.conn.poll(60):
            self.proc.kill()
            raise SystemExit(f"{target.__name__} did not start within 60 s")
        self.url: str = self.conn.recv()

    def cpu_seconds(self) -> float:
        """User + system CPU of the child so far (from /proc, Linux)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.conn.send("stop")
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()


# ------------------------------------------------------------------------ the clients


async def hammer(
    url: str, path: str, bodies: list[dict[str, Any]], concurrency: int, ok: int
) -> dict[str, Any]:
    """POST ``bodies`` to ``url + path`` from ``concurrency`` clients; accepted per second."""
    latencies: list[float] = []
    codes: dict[int, int] = {}
    pending = list(reversed(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:

        async def worker() -> None:
            while pending:
                body = pending.pop()
                started = time.perf_counter()
                r = await http.post(path, json=body)
                latencies.append(time.perf_counter() - started)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(bodies),
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "per_second": round(codes.get(ok, 0) / elapsed, 1),
        "status_codes": {str(k): v for k, v in codes.items()},
        "latency_p50_ms": ms(statistics.median(latencies)),
        "latency_p99_ms": ms(pct(latencies, 0.99)),
    }


def own_cpu_seconds() -> float:
    """User + system CPU of this process (the clients) so far."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


async def measured(
    children: dict[str, Child], arm: Awaitable[dict[str, Any]], cpu: dict[str, float]
) -> dict[str, Any]:
    """Run ``arm``, adding each process's CPU seconds to ``cpu`` (``clients``: this one)."""
    before = {name: c.cpu_seconds() for name, c in children.items()}
    own = own_cpu_seconds()
    result = await arm
    for name, c in children.items():
        cpu[name] = cpu.get(name, 0.0) + c.cpu_seconds() - before[name]
    cpu["clients"] = cpu.get("clients", 0.0) + own_cpu_seconds() - own
    return result


def per_job_ms(cpu: dict[str, float], jobs: int) -> dict[str, float]:
    return {name: round(1000 * seconds / jobs, 2) for name, seconds in cpu.items()}


async def submissions(
    studio_child: Child, cluster_child: Child, jobs: int, concurrency: int
) -> dict[str, Any]:
    studio, cluster = studio_child.url, cluster_child.url
    children = {"studio": studio_child, "api": cluster_child}
    body = {"pool": "sdxl", "prompt": "a lighthouse at dusk", "quality": "low"}
    async with httpx.AsyncClient(base_url=studio, timeout=30) as http:
        made = await http.post("/api/v1/generations", json=body)
        made.raise_for_status()
    async with httpx.AsyncClient(base_url=cluster, timeout=30) as http:
        job = (await http.get(f"{JOBS_PATH}/{made.json()['name']}")).json()
    # The body the studio writes, with a fresh name each (what a direct client would send).
    meta = {k: v for k, v in job["metadata"].items() if k in ("labels", "annotations")}
    run = os.urandom(3).hex()  # fresh names when measured again in one cluster
    direct_bodies = [
        {
            "apiVersion": job["apiVersion"],
            "kind": job["kind"],
            "metadata": {**meta, "name": f"direct-{run}-{i:06d}", "namespace": NS},
            "spec": job["spec"],
        }
        for i in range(jobs)
    ]
    # Warm both paths, then measure them alternately (twice each) so drift hits both.
    await hammer(cluster, JOBS_PATH, direct_bodies[:20], concurrency, 201)
    await hammer(studio, "/api/v1/generations", [body] * 20, concurrency, 201)
    half = jobs // 2
    direct, via = [], []
    cpu_direct: dict[str, float] = {}
    cpu_via: dict[str, float] = {}
    for part in (direct_bodies[20 : 20 + half], direct_bodies[20 + half :]):
        arm = hammer(cluster, JOBS_PATH, part, concurrency, 201)
        direct.append(await measured(children, arm, cpu_direct))
        bodies = [body] * len(part)
        arm = hammer(studio, "/api/v1/generations", bodies, concurrency, 201)
        via.append(await measured(children, arm, cpu_via))
    direct_rate = sum(d["per_second"] for d in direct) / len(direct)
    studio_rate = sum(v["per_second"] for v in via) / len(via)
    measured_jobs = jobs - 20
    direct_ms, via_ms = per_job_ms(cpu_direct, measured_jobs), per_job_ms(cpu_via, measured_jobs)
    # With every process CPU-bound on the machine's cores, the CPU a job costs in all the
    # processes together sets the rate: the studio arm is expected at the direct arm's
    # rate times (its CPU per job) / (the studio arm's CPU per job).
    expected = sum(direct_ms.values()) / sum(via_ms.values())
    return {
        "studio": via,
        "direct": direct,
        "studio_per_second": round(studio_rate, 1),
        "direct_per_second": round(direct_rate, 1),
        "ratio": round(studio_rate / direct_rate, 3),
        "cpu_ms_per_job_direct": direct_ms,
        "cpu_ms_per_job_studio": via_ms,
        "cpu_bound_ratio": round(expected, 3),
    }


class Stream(asyncio.Protocol):
    """One progress stream over HTTP/1.1, read straight off the socket by a protocol.

    500 listeners in one client process: a full HTTP client library's per-line cost (or
    even a task woken per event) would be what is measured. The data of each chunk is
    scanned for complete events as it arrives; ``on_event(data, now)`` gets each
    ``progress`` data line, ``done`` resolves when the ``done`` event arrives.
    """

    def __init__(self, on_event: Callable[[bytes, float], None]) -> None:
        self.on_event = on_event
        self.buffer = b""
        self.headers_seen = False
        self.first = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        if not self.headers_seen:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                self.done.set_exception(RuntimeError(head[:80].decode()))
                return
            self.headers_seen, self.buffer = True, rest
        *events, self.buffer = self.buffer.split(b"\r\n\r\n")
        for event in events:
            start = event.find(b"event: ")
            if start < 0:
                continue  # chunk sizes and pings
            if event.startswith(b"event: done", start):
                if not self.done.done():
                    self.done.set_result(None)
                return
            if not self.first.done():
                self.first.set_result(None)
            data = event.find(b"data: ", start)
            if data >= 0:
                self.on_event(event[data + 6 :].split(b"\r\n", 1)[0], now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed before done"))


async def open_stream(
    url: str, path: str, on_event: Callable[[bytes, float], None]
) -> tuple[asyncio.Transport, Stream]:
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    transport, stream = await loop.create_connection(lambda: Stream(on_event), host, int(port))
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
    transport.write(request.encode())
    return transport, stream


async def fanout(
    studio: str,
    cluster: str,
    listeners: int,
    updates: int,
    child: Child,
    profile: Path | None = None,
) -> dict[str, Any]:
    """L listeners on one job, U status patches; the studio's CPU and (``profile``) its
    samples are taken from the first patch to the last, after every stream opened."""
    async with (
        httpx.AsyncClient(base_url=studio, timeout=120) as http,
        httpx.AsyncClient(base_url=cluster, timeout=30) as api,
    ):
        r = await http.post("/api/v1/generations", json={"pool": "sdxl", "prompt": "fan-out"})
        name = r.json()["name"]
        sent: dict[int, float] = {}
        received: list[float] = []
        delivered = [0]

        def on_event(data: bytes, now: float) -> None:
            event = json.loads(data)
            value = event.get("value")
            if event.get("phase") == "Running" and value in sent:
                received.append(now - sent[value])
                delivered[0] += 1

        opened = [
            await open_stream(studio, f"/api/v1/generations/{name}/events", on_event)
            for _ in range(listeners)
        ]
        # every stream has its first snapshot
        await asyncio.wait_for(asyncio.gather(*(s.first for _, s in opened)), timeout=120)
        path = f"{JOBS_PATH}/{name}/status"
        headers = {"Content-Type": "application/merge-patch+json"}
        async with profiled(child.proc.pid, profile):
            cpu0 = child.cpu_seconds()
            for value in range(1, updates + 1):
                progress = {"value": value, "max": updates, "percent": value * 100 // updates}
                patch = {"status": {"phase": "Running", "progress": progress}}
                sent[value] = time.perf_counter()
                (await api.patch(path, json=patch, headers=headers)).raise_for_status()
                await asyncio.sleep(0.1)
            cpu1 = child.cpu_seconds()
        done = {"status": {"phase": "Succeeded"}}
        (await api.patch(path, json=done, headers=headers)).raise_for_status()
        await asyncio.wait_for(asyncio.gather(*(s.done for _, s in opened)), timeout=120)
        for transport, _ in opened:
            transport.close()
    return {
        "listeners": listeners,
        "updates": updates,
        "events_expected": listeners * updates,
        "events_delivered": delivered[0],
        "latency_p50_ms": ms(statistics.median(received)) if received else None,
        "latency_p99_ms": ms(pct(received, 0.99)) if received else None,
        "latency_max_ms": ms(max(received)) if received else None,
        "studio_cpu_seconds_updates": round(cpu1 - cpu0, 3),
    }


@contextlib.asynccontextmanager
async def profiled(pid: int, out: Path | None) -> AsyncIterator[None]:
    """py-spy samples ``pid`` into ``out`` (collapsed stacks) inside the block, if asked."""
    if out is None:
        yield
        return
    spy = await asyncio.create_subprocess_exec(
        shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
        "record", "--pid", str(pid), "--format", "raw", "--output", str(out),
        "--rate", "200", "--nonblocking", "--gil",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.send_signal(2)
        await spy.wait()
        print(f"profile of the studio written to {out}: {top_frames(out)}")


def top_frames(path: Path, n: int = 12) -> str:
    """The ``n`` functions with the most samples anywhere on the stack (inclusive)."""
    counts: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, num = line.rpartition(" ")
        samples = int(num)
        total += samples
        for frame in set(stack.split(";")):
            counts[frame] = counts.get(frame, 0) + samples
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:n]
    return "; ".join(f"{frame} {100 * c // max(total, 1)}%" for frame, c in ranked)


async def run(args: argparse.Namespace, cluster: Child, studio: Child) -> dict[str, Any]:
    cpu0 = (studio.cpu_seconds(), cluster.cpu_seconds())
    async with profiled(studio.proc.pid, args.profile):
        sub = await submissions(studio, cluster, args.jobs, args.concurrency)
    cpu1 = (studio.cpu_seconds(), cluster.cpu_seconds())
    direct_ms, via_ms = sub["cpu_ms_per_job_direct"], sub["cpu_ms_per_job_studio"]
    print(
        f"submissions: studio {sub['studio_per_second']}/s, direct API creates "
        f"{sub['direct_per_second']}/s -> ratio {sub['ratio']} (goal >= 0.9; "
        f"{args.jobs} of each, {args.concurrency} clients; studio CPU {cpu1[0] - cpu0[0]:.1f} s, "
        f"API CPU {cpu1[1] - cpu0[1]:.1f} s)\n"
        f"  CPU ms per job, direct: clients {direct_ms['clients']}, API {direct_ms['api']}; "
        f"via the studio: clients {via_ms['clients']}, API {via_ms['api']}, studio "
        f"{via_ms['studio']} -> CPU-bound expectation (direct CPU per job ÷ studio-arm CPU per "
        f"job) {sub['cpu_bound_ratio']} on {os.cpu_count()} cores"
    )
    # Rounds of (1 listener, L listeners) side by side: a stall of the shared machine
    # hits one round, not the figure (the median of the rounds' ratios).
    sse_profile = args.profile.with_suffix(".sse.raw") if args.profile else None
    rounds = []
    for i in range(args.rounds):
        one = await fanout(studio.url, cluster.url, 1, args.updates, studio)
        profile = sse_profile if i == 0 else None
        many = await fanout(studio.url, cluster.url, args.listeners, args.updates, studio, profile)
        ratio = round(many["latency_p99_ms"] / max(one["latency_p99_ms"], 0.1), 2)
        rounds.append({"one": one, "many": many, "ratio": ratio})
    ratio = statistics.median(r["ratio"] for r in rounds)
    many = min(rounds, key=lambda r: abs(r["ratio"] - ratio))["many"]
    one = min(rounds, key=lambda r: abs(r["ratio"] - ratio))["one"]
    sse_cpu = many["studio_cpu_seconds_updates"]  # from the first update to the last
    print(
        f"SSE fan-out: p99 {many['latency_p99_ms']} ms at {args.listeners} listeners, "
        f"{one['latency_p99_ms']} ms at 1 -> ratio {ratio} (goal <= 3; median of "
        f"{args.rounds} rounds: {[r['ratio'] for r in rounds]}; p50 "
        f"{many['latency_p50_ms']} ms, max {many['latency_max_ms']} ms, "
        f"{many['events_delivered']}/{many['events_expected']} events; studio CPU "
        f"{sse_cpu:.2f} s, {1e6 * sse_cpu / max(many['events_delivered'], 1):.0f} µs per event)"
    )
    return {
        "submissions": sub,
        "sse_one_listener": one,
        "sse_fanout": many,
        "sse_p99_ratio": ratio,
        "sse_rounds": [r["ratio"] for r in rounds],
        "studio_cpu_seconds_fanout": round(sse_cpu, 2),
        "studio_cpu_seconds_submissions": round(cpu1[0] - cpu0[0], 2),
        "api_cpu_seconds_submissions": round(cpu1[1] - cpu0[1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--listeners", type=int, default=500)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="SSE rounds (median ratio)")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample the studio with py-spy during the submissions into this file",
    )
    args = parser.parse_args()
    cluster = Child(cluster_process)
    try:
        studio = Child(studio_process, cluster.url)
        try:
            figures = asyncio.run(run(args, cluster, studio))
        finally:
            studio.stop()
    finally:
        cluster.stop()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
