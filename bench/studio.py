"""Studio benchmark: submissions per second and SSE fan-out, each against a reference.

Three kinds of process, as in a real deployment: the emulated Kubernetes API, the studio
(uvicorn) and the clients (this process). Every figure is a ratio against a reference
measured in the same run, because absolute figures move with the machine:

1. **submissions**: ``POST /api/v1/generations`` from N concurrent clients, each creating
   a GenerationJob, against the same clients creating the same GenerationJob bodies
   directly in the emulated API (the one write a submission needs). Goal: ≥ 0.9.
2. **SSE fan-out**: L progress streams on one job, fed by the studio's one shared watch;
   the job's status is patched U times and each event is timed from the patch to its
   arrival at the listener's socket (the kernel's receive stamp). The p99 at L listeners
   against the p99 at one listener, in rounds side by side (the median of the rounds'
   ratios). Goal: ≤ 3 for listeners that, like remote browsers, are not woken on the
   studio's machine by each write ("remote"); also printed: one process waiting on all L
   sockets ("woken"), and the same timed when that process read each event ("as read").

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
import socket
import statistics
import struct
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
    from warmpool.operator.adapters import heap, kube

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
        heap.freeze()  # as warmpool-studio does before it serves
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


#: ``SO_TIMESTAMPNS`` (Linux): the kernel stamps each received segment with its arrival
#: time (``CLOCK_REALTIME``), handed back with ``recvmsg`` as ``SCM_TIMESTAMPNS``.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
STAMP = struct.Struct("qq")  # struct timespec


class Stream:
    """One progress stream over HTTP/1.1, read straight off a non-blocking socket.

    500 listeners in one client process: a full HTTP client library's per-line cost (or
    even a task woken per event) would be what is measured. Each read is timed twice:
    when this process read it (``read_at``) and when the bytes reached the socket
    (``arrived_at``, the kernel's receive stamp; ``None`` where the kernel gives none).
    On loopback the studio's write puts the bytes in the socket within its ``send``, so
    the arrival is the studio's delivery; the read also waits for this one process to
    get through the other 499 sockets that became readable at the same time, which 500
    real listeners, each on its own machine, do not. ``on_event(data, read_at,
    arrived_at)`` gets each ``progress`` data line; ``done`` resolves on the ``done`` event.
    """

    def __init__(self, sock: socket.socket, on_event: OnEvent) -> None:
        loop = asyncio.get_running_loop()
        self.sock, self.on_event, self.loop = sock, on_event, loop
        self.buffer = b""
        self.headers_seen = False
        self.first = loop.create_future()
        self.done = loop.create_future()
        loop.add_reader(sock.fileno(), self.readable)

    def readable(self) -> None:
        """Read what the socket holds (each ``recvmsg`` carries its segment's stamp)."""
        while self.sock.fileno() >= 0:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(STAMP.size))
            except BlockingIOError:
                return
            except OSError as exc:
                self.lost(exc)
                return
            read_at = time.time()
            if not data:
                self.lost(None)
                return
            arrived_at = None
            for level, kind, raw in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = STAMP.unpack(raw[: STAMP.size])
                    arrived_at = seconds + nanoseconds / 1e9
            self.received(data, read_at, arrived_at)

    def unwatch(self) -> None:
        """Stop being woken by new data (``readable`` is then called by the benchmark)."""
        self.loop.remove_reader(self.sock.fileno())

    def watch(self) -> None:
        self.loop.add_reader(self.sock.fileno(), self.readable)

    def received(self, data: bytes, read_at: float, arrived_at: float | None) -> None:
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
            line = event.find(b"data: ", start)
            if line >= 0:
                self.on_event(event[line + 6 :].split(b"\r\n", 1)[0], read_at, arrived_at)

    def lost(self, exc: Exception | None) -> None:
        self.close()
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed before done"))

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


OnEvent = Callable[[bytes, float, "float | None"], None]


async def open_stream(url: str, path: str, on_event: OnEvent) -> Stream:
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    await loop.sock_connect(sock, (host, int(port)))
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
    await loop.sock_sendall(sock, request.encode())
    return Stream(sock, on_event)


async def full_collections(url: str) -> int:
    """The studio's full (oldest-generation) garbage collections so far, from its metrics."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith('python_gc_collections_total{generation="2"}'):
            return int(float(line.rsplit(" ", 1)[1]))
    return -1


async def until_no_streams(http: httpx.AsyncClient, deadline: float = 30.0) -> None:
    """Wait (up to ``deadline`` s) until the studio's metrics show no open stream."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        text = (await http.get("/metrics")).text
        if "\nwarmpool_studio_sse_listeners 0.0\n" in text:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the studio still had open streams after {deadline} s")


async def fanout(
    studio: str,
    cluster: str,
    listeners: int,
    updates: int,
    child: Child,
    profile: Path | None = None,
    *,
    drain: bool = False,
) -> dict[str, Any]:
    """L listeners on one job, U status patches; the studio's CPU and (``profile``) its
    samples are taken from the first patch to the last, after every stream opened.

    ``drain``: between patches nothing here waits on the sockets; each is read once the
    next patch is due (the kernel's stamps still say when each event arrived). A listener
    process blocked on 500 sockets is woken by the studio's writes, on loopback inside the
    studio's own ``send``; remote browsers cost the studio no such wake-up."""
    async with (
        httpx.AsyncClient(base_url=studio, timeout=120) as http,
        httpx.AsyncClient(base_url=cluster, timeout=30) as api,
    ):
        r = await http.post("/api/v1/generations", json={"pool": "sdxl", "prompt": "fan-out"})
        name = r.json()["name"]
        sent: dict[int, float] = {}
        read: list[float] = []  # patch -> this process read the event
        arrived: list[float] = []  # patch -> the event reached the listener's socket

        def on_event(data: bytes, read_at: float, arrived_at: float | None) -> None:
            event = json.loads(data)
            value = event.get("value")
            if event.get("phase") == "Running" and value in sent:
                read.append(read_at - sent[value])
                if arrived_at is not None:
                    arrived.append(arrived_at - sent[value])

        opened = [
            await open_stream(studio, f"/api/v1/generations/{name}/events", on_event)
            for _ in range(listeners)
        ]
        # every stream has its first snapshot
        await asyncio.wait_for(asyncio.gather(*(s.first for s in opened)), timeout=120)
        if drain:
            for stream in opened:
                stream.unwatch()
        path = f"{JOBS_PATH}/{name}/status"
        headers = {"Content-Type": "application/merge-patch+json"}
        async with profiled(child.proc.pid, profile):
            cpu0 = child.cpu_seconds()
            for value in range(1, updates + 1):
                progress = {"value": value, "max": updates, "percent": value * 100 // updates}
                patch = {"status": {"phase": "Running", "progress": progress}}
                sent[value] = time.time()  # the kernel's stamps are CLOCK_REALTIME
                (await api.patch(path, json=patch, headers=headers)).raise_for_status()
                await asyncio.sleep(0.1)
                if drain:
                    for stream in opened:
                        stream.readable()
            cpu1 = child.cpu_seconds()
        if drain:
            for stream in opened:
                stream.watch()
        done = {"status": {"phase": "Succeeded"}}
        (await api.patch(path, json=done, headers=headers)).raise_for_status()
        await asyncio.wait_for(asyncio.gather(*(s.done for s in opened)), timeout=120)
        for stream in opened:
            stream.close()
        # The studio tears 500 streams down after this; the next round starts once it has.
        await until_no_streams(http)

    def figures(latencies: list[float]) -> dict[str, float | None]:
        if not latencies:
            return {"p50_ms": None, "p99_ms": None, "max_ms": None}
        return {
            "p50_ms": ms(statistics.median(latencies)),
            "p99_ms": ms(pct(latencies, 0.99)),
            "max_ms": ms(max(latencies)),
        }

    return {
        "listeners": listeners,
        "updates": updates,
        "events_expected": listeners * updates,
        "events_delivered": len(read),
        "events_stamped_by_the_kernel": len(arrived),
        "arrived": figures(arrived),
        "read": figures(read),
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


def p99_ratio(arm: dict[str, Any], clock: str) -> float:
    many, one = arm["many"][clock]["p99_ms"] or 0, arm["one"][clock]["p99_ms"] or 0
    return round(many / max(one, 0.1), 2)


def studio_us(fanned: dict[str, Any]) -> int:
    """The studio's CPU per delivered event, µs, from the first update to the last."""
    events = max(fanned["events_delivered"], 1)
    return round(1e6 * fanned["studio_cpu_seconds_updates"] / events)


async def run(args: argparse.Namespace, cluster: Child, studio: Child) -> dict[str, Any]:
    cpu0 = (studio.cpu_seconds(), cluster.cpu_seconds())
    full0 = await full_collections(studio.url)
    async with profiled(studio.proc.pid, args.profile):
        sub = await submissions(studio, cluster, args.jobs, args.concurrency)
    cpu1 = (studio.cpu_seconds(), cluster.cpu_seconds())
    full1 = await full_collections(studio.url)
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
    # Three figures, each a p99 at L listeners ÷ the p99 at one, same reading both times:
    # - "remote": listeners that, like browsers on their own machines, are not woken by
    #   each write (read between patches); the event's arrival from the kernel's stamp;
    # - "woken": this one process waits on all L sockets, so on loopback each of the
    #   studio's writes also wakes it (inside the studio's ``send``); arrival stamps;
    # - "as read": the same, timed when this process got to the socket, after the
    #   others that became readable with it.
    rounds = []
    for i in range(args.rounds):
        profile = sse_profile if i == 0 else None
        arms = {}
        for arm, drain in (("remote", True), ("woken", False)):
            one = await fanout(studio.url, cluster.url, 1, args.updates, studio, drain=drain)
            many = await fanout(
                studio.url, cluster.url, args.listeners, args.updates, studio,
                profile if drain else None, drain=drain,
            )  # fmt: skip
            arms[arm] = {"one": one, "many": many}
        rounds.append({
            "arms": arms,
            "remote": p99_ratio(arms["remote"], "arrived"),
            "woken": p99_ratio(arms["woken"], "arrived"),
            "as read": p99_ratio(arms["woken"], "read"),
        })  # fmt: skip
    full2 = await full_collections(studio.url)
    ratio = {k: statistics.median(r[k] for r in rounds) for k in ("remote", "woken", "as read")}
    middle = min(rounds, key=lambda r: abs(r["remote"] - ratio["remote"]))
    lines = []
    for key, arm, clock in (("remote", "remote", "arrived"), ("woken", "woken", "arrived"),
                            ("as read", "woken", "read")):  # fmt: skip
        one, many = middle["arms"][arm]["one"], middle["arms"][arm]["many"]
        lines.append(
            f"  {key:8} p99 {many[clock]['p99_ms']} ms at {args.listeners}, "
            f"{one[clock]['p99_ms']} ms at 1 -> ratio {ratio[key]} (rounds "
            f"{[r[key] for r in rounds]}; p50 {many[clock]['p50_ms']} ms, max "
            f"{many[clock]['max_ms']} ms; studio {studio_us(many)} µs CPU per event)"
        )
    many = middle["arms"]["remote"]["many"]
    sse_cpu = many["studio_cpu_seconds_updates"]  # from the first update to the last
    print(
        f"SSE fan-out, patch -> event at the listener (goal <= 3 for 'remote'; median of "
        f"{args.rounds} rounds; {many['events_stamped_by_the_kernel']}/"
        f"{many['events_expected']} events stamped by the kernel):\n" + "\n".join(lines)
    )
    print(
        f"studio's full garbage collections: {full1 - full0} during the submissions, "
        f"{full2 - full1} during the fan-out rounds"
    )
    return {
        "submissions": sub,
        "sse_p99_ratio": ratio["remote"],
        "sse_p99_ratio_woken": ratio["woken"],
        "sse_p99_ratio_as_read": ratio["as read"],
        "sse_rounds": [{k: r[k] for k in ("remote", "woken", "as read")} for r in rounds],
        "sse_middle_round": middle["arms"],
        "studio_full_collections_submissions": full1 - full0,
        "studio_full_collections_fanout": full2 - full1,
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
