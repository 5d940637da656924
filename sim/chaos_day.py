"""A chaos day in scaled time: the whole local stack, jobs arriving, faults, SIGKILLs.

:func:`run_day` starts the emulated API and the Vast.ai simulator in this process and
``warmpool-operator`` as a child process, declares one pool with a budget, measures a
clean start (operator started → pool converged, the reference), then plays a seeded
schedule of :class:`DayPlan` events over ``seconds`` of wall time — job arrivals,
429 and 5xx storms, lost creates, vanishing machines, full disks, ComfyUI crashes, and
SIGKILLs (some the moment a create reaches Vast.ai), restarting the operator each time —
then clears the faults, lets the jobs drain and the orphan collector run, and counts
everything from the outside (:func:`warmpool.sim.chaos.tally`).

Used by ``bench/soak.py`` (a whole simulated day) and by the short system test.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from warmpool.sim import chaos
from warmpool.sim.cluster import RunningCluster, start_cluster
from warmpool.sim.vastai import VastaiServer, start_vastai
from warmpool.sim.vastai_catalogue import generate_machines
from warmpool.sim.vastai_state import Timing

POOL = "soak"
NAMESPACE = "default"
#: The operator's intervals, scaled down like the simulated machines.
SETTINGS: dict[str, float | str] = {
    "reconcile_interval": 1.0, "probe_interval": 0.3, "inventory_refresh": 0.5,
    "offer_cache": 1.0, "orphan_grace": 3.0, "vastai_timeout": 2.0, "vastai_deadline": 8.0,
    "comfy_timeout": 5.0, "watch_timeout": 10.0,
}  # fmt: skip


@dataclass
class DayPlan:
    """What happens over the day (counts are spread at seeded random moments)."""

    seconds: float = 600.0  # wall seconds of the chaotic part
    time_scale: float = 144.0  # simulated seconds per wall second (600 s: one day)
    replicas: int = 2
    max_replicas: int = 4
    max_hourly: float = 4.0  # the pool's budget, $/hour
    max_daily: float = 40.0  # $/day
    jobs: int = 300
    deletes: int = 6  # jobs deleted while queued or running
    kills: int = 24  # SIGKILLs of the operator (restarted each time) ...
    kills_at_create: int = 6  # ... of which the moment a create reaches Vast.ai
    storms: int = 8  # alternately 429 and 5xx
    storm_requests: int = 40
    lost_creates: int = 4
    vanishes: int = 4
    disk_fulls: int = 3
    comfy_crashes: int = 5
    seed: int = 15
    machines: int = 60
    drain: float = 240.0  # wall seconds allowed for jobs to end and the pool to heal
    converge_timeout: float = 180.0
    #: (fraction of the day, event) pairs played instead of the seeded random schedule
    #: (the counts above are then ignored, except ``jobs``).
    script: tuple[tuple[float, str], ...] = ()
    #: How long an armed kill waits for a create before it kills anyway, wall seconds.
    arm_timeout: float = 15.0
    #: Fill a machine's disk right after arming a kill at create (so a replacement is
    #: rented while the kill is armed).
    provoke_creates: bool = True


@dataclass
class DayResult:
    plan: dict[str, Any]
    tally: chaos.Tally
    clean_start_seconds: float
    restart_converge_seconds: list[float | None]
    faults: dict[str, int]
    kills: int
    peak_hourly: float
    wall_seconds: float
    drained_seconds: float | None
    #: Faults still waiting for a request or rental when the day ended (never fired).
    unfired_faults: dict[str, int]
    events: list[str] = field(default_factory=list)

    @property
    def longest_restart_converge(self) -> float | None:
        measured = [s for s in self.restart_converge_seconds if s is not None]
        if len(measured) < len(self.restart_converge_seconds):
            return None  # at least one restart never converged
        return max(measured) if measured else 0.0


def pool_body(plan: DayPlan) -> dict[str, Any]:
    spec = {
        "replicas": plan.replicas, "maxReplicas": plan.max_replicas, "idleTimeout": "10m",
        "hedge": 0,
        "offer": {"maxPricePerHour": 1.5, "minReliability": 0.5, "verifiedOnly": False},
        "template": {"diskGb": 20},
        "readiness": {"timeout": "10m", "initialBackoff": "100ms", "maxBackoff": "500ms",
                      "canary": {"enabled": True, "steps": 1, "size": 64, "timeout": "2m"}},
        "failurePolicy": {"loadingTimeout": "15m", "hostCooldown": "2h"},
        "budget": {"maxHourlySpend": plan.max_hourly, "maxDailySpend": plan.max_daily},
        "jobs": {"concurrencyPerInstance": 1, "stallTimeout": "2m", "maxAttempts": 4},
    }  # fmt: skip
    return {"apiVersion": chaos.API, "kind": "GpuPool",
            "metadata": {"name": POOL, "namespace": NAMESPACE}, "spec": spec}  # fmt: skip


def job_body(name: str, rnd: random.Random) -> dict[str, Any]:
    spec = {
        "pool": POOL,
        "prompt": f"a lighthouse at dusk ({name})",
        "quality": "low",
        "width": 64,
        "height": 64,
        "steps": rnd.randint(4, 24),
        "seed": rnd.randint(1, 9),
    }
    return {"apiVersion": chaos.API, "kind": "GenerationJob",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}  # fmt: skip


def schedule(plan: DayPlan, rnd: random.Random) -> list[tuple[float, str]]:
    """(wall second, event) over the day's first 90 %, sorted."""
    if plan.script:
        return sorted((fraction * plan.seconds, kind) for fraction, kind in plan.script)
    kinds = (
        ["kill"] * (plan.kills - plan.kills_at_create)
        + ["kill_at_create"] * plan.kills_at_create
        + [("storm_rate_limit", "storm_server_error")[i % 2] for i in range(plan.storms)]
        + ["lost_create"] * plan.lost_creates
        + ["vanish"] * plan.vanishes
        + ["disk_full"] * plan.disk_fulls
        + ["comfy_crash"] * plan.comfy_crashes
        + ["delete"] * plan.deletes
    )
    # Kills evenly spread with jitter (at least ``kills`` of them in any case), the rest
    # uniformly at random.
    times: list[tuple[float, str]] = []
    kills = [k for k in kinds if k.startswith("kill")]
    rnd.shuffle(kills)
    slot = 0.9 * plan.seconds / max(1, len(kills))
    for i, kind in enumerate(kills):
        times.append((slot * (i + rnd.uniform(0.2, 0.9)), kind))
    for kind in kinds:
        if not kind.startswith("kill"):
            times.append((rnd.uniform(0.02, 0.9) * plan.seconds, kind))
    return sorted(times)


class Day:
    """One running chaos day (see :func:`run_day`)."""

    def __init__(self, plan: DayPlan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.rnd = random.Random(plan.seed)
        self.cluster: RunningCluster | None = None
        self.sim: VastaiServer | None = None
        self.operator: chaos.OperatorProcess | None = None
        self.chaos: chaos.Chaos | None = None
        self.converge: list[float | None] = []
        self.watchers: list[asyncio.Task[None]] = []
        self.peak_hourly = 0.0
        self.job_names: list[str] = []
        self.events: list[str] = []
        self.http: httpx.AsyncClient | None = None
        self.touches = 0
        self.unfired: dict[str, int] = {}
        self.trace: Path | None = None
        self.restarting = asyncio.Lock()
        self.pending: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ the stack

    async def start(self) -> None:
        plan = self.plan
        self.cluster = await start_cluster(request_log_limit=2000)
        key = secrets.token_hex(8)
        timing = Timing(loading_after=(2.0, 6.0), pull=(20.0, 60.0), ports_after=(0.0, 3.0))
        comfy = {"step_seconds": 1.0, "load_seconds": 3.0, "node_seconds": 0.05}
        self.sim = await start_vastai(
            api_key=key, seed=plan.seed, time_scale=plan.time_scale, timing=timing,
            machines=generate_machines(plan.seed, count=plan.machines), comfy_options=comfy,
        )  # fmt: skip
        env = chaos.operator_env(
            kubeconfig=self.cluster.write_kubeconfig(self.workdir / "kubeconfig"),
            vastai_url=self.sim.url, api_key=key, artifacts=self.workdir / "artifacts",
            settings=SETTINGS,
        )  # fmt: skip
        binary = str(Path(sys.executable).parent / "warmpool-operator")
        self.operator = chaos.OperatorProcess([binary], env, log=self.workdir / "operator.log")
        self.chaos = chaos.Chaos(self.sim, self.operator, seed=plan.seed)

    async def stop(self) -> None:
        for task in [*self.watchers, *self.pending]:
            task.cancel()
        await asyncio.gather(*self.watchers, *self.pending, return_exceptions=True)
        if self.operator is not None:
            await self.operator.stop()
        if self.sim is not None:
            await self.sim.stop()
        if self.cluster is not None:
            await self.cluster.stop()

    def is_converged(self) -> bool:
        assert self.sim is not None and self.cluster is not None
        return chaos.converged(self.sim, self.cluster, POOL, NAMESPACE)

    # ------------------------------------------------------------ the day

    async def clean_start(self) -> float:
        assert self.operator is not None and self.cluster is not None
        self.cluster.create(pool_body(self.plan))
        await self.operator.start()
        return await chaos.wait_until(self.is_converged, self.plan.converge_timeout,
                                      "clean start converged")  # fmt: skip

    def note(self, text: str) -> None:
        self.events.append(text)
        if self.trace is not None:
            with self.trace.open("a") as out:
                out.write(f"{asyncio.get_running_loop().time():.1f} EVENT {text}\n")

    async def restart(self, what: str) -> None:
        assert self.operator is not None
        async with self.restarting:
            await self.operator.kill()
            await self.operator.start()
            await self.touch_pool()
        index = len(self.converge)
        self.converge.append(None)
        self.note(f"{what} #{index + 1}")

        async def watch() -> None:
            with contextlib.suppress(TimeoutError):
                took = await chaos.wait_until(self.is_converged, self.plan.converge_timeout,
                                              f"converged after restart {index + 1}")  # fmt: skip
                self.converge[index] = took

        self.watchers.append(asyncio.create_task(watch()))

    async def touch_pool(self) -> None:
        """A spec change right after each restart (``metadata.generation`` goes up): the
        pool has converged only once the new process reconciled it (``observedGeneration``)."""
        assert self.http is not None
        self.touches += 1
        idle = "601s" if self.touches % 2 else "10m"
        response = await self.http.patch(
            f"/apis/{chaos.API}/namespaces/{NAMESPACE}/gpupools/{POOL}",
            json={"spec": {"idleTimeout": idle}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        response.raise_for_status()

    async def play(self, http: httpx.AsyncClient) -> None:
        plan = self.plan
        assert self.chaos is not None
        loop = asyncio.get_running_loop()
        start = loop.time()
        jobs = asyncio.create_task(self.arrivals(http))
        sampler = asyncio.create_task(self.sample_spend())
        try:
            for at, kind in schedule(plan, self.rnd):
                await asyncio.sleep(max(0.0, start + at - loop.time()))
                await self.act(kind, http)
            await jobs
            await asyncio.gather(*self.pending)
        finally:
            sampler.cancel()
            jobs.cancel()
            await asyncio.gather(sampler, jobs, return_exceptions=True)

    async def act(self, kind: str, http: httpx.AsyncClient) -> None:
        c = self.chaos
        assert c is not None
        if kind == "kill":
            await self.restart("kill")
        elif kind == "kill_at_create":
            armed = c.arm_kill_on_create()

            async def when_created() -> None:
                try:
                    await asyncio.wait_for(asyncio.shield(armed), timeout=self.plan.arm_timeout)
                    await self.restart("kill at create")
                except TimeoutError:
                    c.disarm(armed)
                    await self.restart("kill (no create came)")

            task = asyncio.create_task(when_created())
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
            if self.plan.provoke_creates:  # a machine to replace: a create will come
                await self.act("disk_full", http)
        elif kind.startswith("storm_"):
            c.storm(kind.removeprefix("storm_"), requests=self.plan.storm_requests,
                    **({"retry_after": 1.0} if kind == "storm_rate_limit" else {}))  # fmt: skip
            self.note(kind)
        elif kind == "lost_create":
            c.lose_next_create()
            self.note(kind)
        elif kind in ("vanish", "disk_full", "comfy_crash"):
            inject = {"vanish": c.vanish, "disk_full": c.fill_disk,
                      "comfy_crash": c.crash_comfy}[kind]  # fmt: skip
            for _ in range(20):  # a running machine to hit may take a moment to appear
                target = inject()
                if target is not None:
                    break
                await asyncio.sleep(0.5)
            self.note(f"{kind} {target}" if target else f"{kind}: no running machine")
        elif kind == "delete" and self.job_names:
            name = self.rnd.choice(self.job_names)
            await http.delete(f"/apis/{chaos.API}/namespaces/{NAMESPACE}/generationjobs/{name}")
            self.note(f"delete {name}")

    async def arrivals(self, http: httpx.AsyncClient) -> None:
        """``plan.jobs`` jobs at random (Poisson) moments over the day's first 85 %."""
        rate = self.plan.jobs / (0.85 * self.plan.seconds)
        for i in range(self.plan.jobs):
            await asyncio.sleep(self.rnd.expovariate(rate))
            name = f"soak-{i:05}"
            response = await http.post(
                f"/apis/{chaos.API}/namespaces/{NAMESPACE}/generationjobs",
                json=job_body(name, self.rnd),
            )
            response.raise_for_status()
            self.job_names.append(name)

    async def sample_spend(self) -> None:
        """The peak $/hour; with ``trace``, a line per instance every half second."""
        assert self.sim is not None and self.cluster is not None
        loop = asyncio.get_running_loop()
        next_trace = 0.0
        while True:
            self.peak_hourly = max(self.peak_hourly, chaos.hourly_rate(self.sim))
            if self.trace is not None and loop.time() >= next_trace:
                next_trace = loop.time() + 0.5
                with self.trace.open("a") as out:
                    for line in chaos.snapshot(self.sim, self.cluster):
                        out.write(f"{loop.time():.1f} {line}\n")
            await asyncio.sleep(0.1)

    async def drain(self) -> float | None:
        """Faults off; wait until no job is lost, the pool converged, no orphan left."""
        assert self.sim is not None and self.cluster is not None
        self.unfired = dict(Counter(f.kind for f in self.sim.state.faults))
        self.sim.state.faults.clear()
        if self.chaos is not None:
            self.chaos.disarm()
        sim, cluster = self.sim, self.cluster

        def healed() -> bool:
            return not chaos.lost_jobs(cluster, NAMESPACE) and self.is_converged()

        try:
            return await chaos.wait_until(healed, self.plan.drain, "jobs drained, pool healed")
        except TimeoutError:
            return None
        finally:
            # The orphan collector runs after its grace even when the rest timed out.
            with contextlib.suppress(TimeoutError):
                await chaos.wait_until(lambda: not chaos.orphans(sim, cluster),
                                       4 * float(SETTINGS["orphan_grace"]) + 10,
                                       "orphans collected")  # fmt: skip


def print_nothing(text: str) -> None:
    """The default progress reporter."""


async def run_day(
    plan: DayPlan, *, say: Callable[[str], None] | None = None, keep: Path | None = None
) -> DayResult:
    """Play one chaos day and count what happened (see the module docstring).

    ``keep``: a folder for the operator's log and the artifacts (a temp dir otherwise,
    removed afterwards).
    """
    workdir = keep or Path(tempfile.mkdtemp(prefix="warmpool-soak-"))
    day = Day(plan, workdir)
    if keep is not None:
        day.trace = keep / "timeline.txt"
    report = say or print_nothing
    loop = asyncio.get_running_loop()
    try:
        await day.start()
        assert day.sim is not None and day.cluster is not None and day.operator is not None
        clean = await day.clean_start()
        report(f"clean start converged in {clean:.1f} s")
        begun = loop.time()
        async with httpx.AsyncClient(base_url=day.cluster.url, timeout=30) as http:
            day.http = http
            await day.play(http)
        report(f"day played in {loop.time() - begun:.0f} s; draining")
        drained = await day.drain()
        await asyncio.gather(*day.watchers, return_exceptions=True)
        wall = loop.time() - begun
        counted = chaos.tally(day.sim, day.cluster, NAMESPACE)
        return DayResult(
            plan=asdict(plan),
            tally=counted,
            clean_start_seconds=round(clean, 2),
            restart_converge_seconds=[None if s is None else round(s, 2) for s in day.converge],
            faults=dict(day.chaos.done) if day.chaos else {},
            kills=day.operator.kills,
            peak_hourly=round(day.peak_hourly, 4),
            wall_seconds=round(wall, 1),
            drained_seconds=None if drained is None else round(drained, 1),
            unfired_faults=day.unfired,
            events=day.events,
        )
    finally:
        await day.stop()
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
