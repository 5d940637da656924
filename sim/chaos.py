"""Chaos runs of the local stack, counted from the outside (the chaos day of issue 15).

The pieces ``bench/soak.py`` and ``tests/operator/system/test_soak.py`` share:

- :class:`OperatorProcess`: ``warmpool-operator`` as a child process, as in a cluster;
  :meth:`~OperatorProcess.kill` sends SIGKILL, :meth:`~OperatorProcess.start` starts it
  again. Everything it knows survives in the emulated API (status, labels, annotations).
- :class:`Chaos`: faults on the simulators through their own switches (request storms,
  lost creates, machines that vanish or fill their disk, ComfyUI crashes), and a kill
  armed on the next create call (the rental exists, the operator never saw the answer).
- :func:`tally`: the figures, from the Vast.ai world and the emulated API only —
  duplicate rentals (more rentals with one idempotency label than one), orphans (live
  rentals whose label names no GpuInstance), lost jobs (not Succeeded, Cancelled, or
  Failed with a reason; or deleted but still there), dollars spent at the operator's clock.
- :func:`converged`: the pool is whole again (ready instances on running rentals, no
  orphan, nothing half-rented).

This module never imports the operator: it runs it as a program, like ``sim/dev.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer
from warmpool.sim.vastai_state import Fault, Rental

API = "warmpool.dev/v1alpha1"
LABEL_ROOT = "warmpool."
#: A job that ended well: Succeeded or Cancelled; Failed counts only with a reason.
ENDED = ("Succeeded", "Cancelled")


def operator_env(
    *,
    kubeconfig: Path,
    vastai_url: str,
    api_key: str,
    artifacts: Path,
    settings: Mapping[str, float | str],
) -> dict[str, str]:
    """The operator's environment: the stack's endpoints plus ``settings`` (names of
    ``OperatorSettings`` fields, e.g. ``{"reconcile_interval": 1}``)."""
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "WARMPOOL_VASTAI_URL": vastai_url,
        "WARMPOOL_VASTAI_API_KEY": api_key,
        "WARMPOOL_ARTIFACTS_URL": f"file://{artifacts}",
        "WARMPOOL_ALLOWED_MACHINE_NETWORKS": '["127.0.0.0/8"]',  # the simulated machines
        "WARMPOOL_HEALTH_PORT": "0",
        "WARMPOOL_LOG_LEVEL": "WARNING",
    }
    env.update({f"WARMPOOL_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class OperatorProcess:
    """``warmpool-operator`` as a child process that can be killed and started again."""

    def __init__(self, argv: list[str], env: Mapping[str, str], *, log: Path | None = None):
        self.argv = argv
        self.env = dict(env)
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.kills = 0
        self.starts = 0
        self._killed = False

    @property
    def alive(self) -> bool:
        """Started and neither killed nor exited (a killed one may not be reaped yet)."""
        return self.proc is not None and self.proc.returncode is None and not self._killed

    async def start(self) -> None:
        if self.alive:
            raise RuntimeError("the operator is already running")
        out: Any = asyncio.subprocess.DEVNULL
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            out = self.log.open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, stdout=out, stderr=out, start_new_session=True
            )
        finally:
            if out is not asyncio.subprocess.DEVNULL:
                out.close()
        self._killed = False
        self.starts += 1

    def kill_now(self) -> bool:
        """SIGKILL, synchronously (from a simulator's hook); True when it was running."""
        if not self.alive or self.proc is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self._killed = True
        self.kills += 1
        return True

    async def kill(self) -> None:
        """SIGKILL and reap it."""
        self.kill_now()
        if self.proc is not None:
            await self.proc.wait()

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        if self._killed:
            await proc.wait()
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


# ---------------------------------------------------------------- faults


class Chaos:
    """Faults on the simulators of one stack, each counted in :attr:`done`."""

    def __init__(self, sim: VastaiServer, operator: OperatorProcess, *, seed: int) -> None:
        self.sim = sim
        self.operator = operator
        self.rnd = random.Random(seed)
        self.done: Counter[str] = Counter()
        self._armed: list[asyncio.Future[int]] = []
        sim.state.create_listeners.append(self._on_create)

    def _fault(self, **spec: Any) -> list[int]:
        return self.sim.state.add_fault(Fault(**spec))

    def storm(self, kind: str, *, requests: int, rate: float = 0.6, **params: Any) -> None:
        """``requests`` of the next Vast.ai requests (each with probability ``rate``)
        answer 429 (``kind="rate_limit"``) or 5xx (``"server_error"``)."""
        self._fault(kind=kind, count=requests, rate=rate, params=params)
        self.done[f"storm_{kind}"] += 1

    def lose_next_create(self) -> None:
        """The next create rents, but its answer is a 504."""
        self._fault(kind="create_lost", count=1)
        self.done["lost_create"] += 1

    def running(self, *, labelled: bool = True) -> list[Rental]:
        """Running rentals with a ComfyUI (warmpool's, unless ``labelled=False``)."""
        return [
            r
            for r in self.sim.state.rentals.values()
            if r.actual_status == "running"
            and r.comfy is not None
            and not r.flags
            and (not labelled or (r.label or "").startswith(LABEL_ROOT))
        ]

    def _pick(self, prefer_busy: bool = False) -> Rental | None:
        found = self.running()
        if prefer_busy:
            busy = [r for r in found if getattr(r.comfy, "running", None) is not None]
            found = busy or found
        return self.rnd.choice(found) if found else None

    def vanish(self) -> int | None:
        """A running machine's host goes away (unknown, then offline; ComfyUI gone)."""
        return self._on_rental("offline", "vanish", {})

    def fill_disk(self) -> int | None:
        """A running machine's disk fills up."""
        return self._on_rental("no_space", "disk_full", {})

    def crash_comfy(self, restart_after: float = 30.0) -> int | None:
        """A running machine's ComfyUI dies (preferably mid-job) and is restarted by its
        supervisor ``restart_after`` simulated seconds later."""
        return self._on_rental("comfy_crash", "comfy_crash", {"restart_after": restart_after},
                               prefer_busy=True)  # fmt: skip

    def _on_rental(
        self, kind: str, name: str, params: dict[str, Any], *, prefer_busy: bool = False
    ) -> int | None:
        rental = self._pick(prefer_busy)
        if rental is None:
            return None
        self._fault(kind=kind, instance_id=rental.id, params=params)
        self.done[name] += 1
        return rental.id

    # ------------------------------------------------------------ kills

    def arm_kill_on_create(self) -> asyncio.Future[int]:
        """SIGKILL the operator the moment its next create reaches Vast.ai (the rental
        exists; the answer never arrives). The future ends with the rental's id; every
        kill armed when that create comes ends with it (one kill for them all)."""
        armed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._armed.append(armed)
        return armed

    def disarm(self, armed: asyncio.Future[int] | None = None) -> None:
        """Cancel one armed kill (all of them when None)."""
        for pending in [armed] if armed is not None else list(self._armed):
            if not pending.done():
                pending.cancel()
            with contextlib.suppress(ValueError):
                self._armed.remove(pending)

    def _on_create(self, rental: Rental) -> None:
        waiting = [a for a in self._armed if not a.done()]
        if waiting and self.operator.kill_now():
            self.done["kill_at_create"] += 1
            for armed in waiting:
                armed.set_result(rental.id)
            self._armed.clear()


# ---------------------------------------------------------------- counting


@dataclass
class Tally:
    """The figures of a chaos run, counted from the outside."""

    duplicate_rentals: int
    duplicate_labels: list[str]
    orphan_rentals: list[int]
    lost_jobs: list[str]
    jobs: dict[str, int]
    rentals_made: int
    spent_dollars: float
    #: What the lost jobs' status says (phase, reason, message, instance, attempts).
    lost_detail: dict[str, str] = field(default_factory=dict)


def all_rentals(sim: VastaiServer) -> list[Rental]:
    return [*sim.state.rentals.values(), *sim.state.destroyed]


def duplicates(sim: VastaiServer) -> dict[str, int]:
    """Idempotency labels carried by more than one rental ever made: label → count."""
    counts = Counter(r.label for r in all_rentals(sim) if r.label)
    return {label: n for label, n in counts.items() if n > 1}


def instance_uids(cluster: RunningCluster) -> set[str]:
    return {i["metadata"]["uid"] for i in cluster.list(API, "GpuInstance")}


def orphans(sim: VastaiServer, cluster: RunningCluster) -> list[int]:
    """Live rentals whose label names no GpuInstance (or carry no warmpool label)."""
    uids = instance_uids(cluster)
    return sorted(
        r.id
        for r in sim.state.rentals.values()
        if not (r.label or "").startswith(LABEL_ROOT) or (r.label or "").split(".")[-1] not in uids
    )


def job_is_lost(job: dict[str, Any]) -> bool:
    status = job.get("status") or {}
    phase = status.get("phase")
    if job["metadata"].get("deletionTimestamp"):
        return True  # deleted, but never let go
    if phase in ENDED:
        return False
    return not (phase == "Failed" and status.get("reason"))


def lost_jobs(cluster: RunningCluster, namespace: str = "default") -> list[str]:
    return sorted(
        j["metadata"]["name"]
        for j in cluster.list(API, "GenerationJob", namespace)
        if job_is_lost(j)
    )


def spent_at_operator_clock(sim: VastaiServer) -> float:
    """Dollars billed, at the operator's (wall) clock: the simulator bills simulated
    seconds, ``time_scale`` of them per wall second."""
    return sim.state.spent() / sim.state.clock.time_scale


def hourly_rate(sim: VastaiServer) -> float:
    """$/hour of every rental that exists now (what a budget must keep under its cap)."""
    return sum(r.dph_base + r.storage_rate for r in sim.state.rentals.values())


def _summary(job: dict[str, Any]) -> str:
    st = job.get("status") or {}
    deleting = " (deleting)" if job["metadata"].get("deletionTimestamp") else ""
    return (f"{st.get('phase')}{deleting} reason={st.get('reason')!r} on {st.get('instance')!r} "
            f"attempts={st.get('attempts')}: {str(st.get('message'))[:160]}")  # fmt: skip


def tally(sim: VastaiServer, cluster: RunningCluster, namespace: str = "default") -> Tally:
    dup = duplicates(sim)
    phases = Counter(
        str((j.get("status") or {}).get("phase") or "Queued")
        for j in cluster.list(API, "GenerationJob", namespace)
    )
    detail = {
        j["metadata"]["name"]: _summary(j)
        for j in cluster.list(API, "GenerationJob", namespace)
        if job_is_lost(j)
    }
    return Tally(
        lost_detail=detail,
        duplicate_rentals=sum(n - 1 for n in dup.values()),
        duplicate_labels=sorted(dup),
        orphan_rentals=orphans(sim, cluster),
        lost_jobs=lost_jobs(cluster, namespace),
        jobs=dict(phases),
        rentals_made=len(all_rentals(sim)),
        spent_dollars=round(spent_at_operator_clock(sim), 6),
    )


def converged(
    sim: VastaiServer, cluster: RunningCluster, pool: str, namespace: str = "default"
) -> bool:
    """The pool is whole: its current spec reconciled (``observedGeneration``), at least
    ``spec.replicas`` Ready instances on running rentals, its status says so, no live
    instance still counts on a rental that is gone or offline, and no rental is without
    its GpuInstance."""
    body = cluster.get(API, "GpuPool", pool, namespace) or {}
    want = int((body.get("spec") or {}).get("replicas") or 0)
    status = body.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(body["metadata"].get("generation") or 1):
        return False  # the current spec is not reconciled yet
    if int(status.get("readyReplicas") or 0) < want:
        return False
    ready = 0
    for inst in cluster.list(API, "GpuInstance", namespace):
        status = inst.get("status") or {}
        phase = status.get("phase") or "Pending"
        contract = status.get("contractId")
        if (inst.get("spec") or {}).get("pool") != pool or contract is None:
            continue
        if phase in ("Terminating", "Failed") or inst["metadata"].get("deletionTimestamp"):
            continue
        rental = sim.state.rentals.get(contract)
        if rental is None or rental.actual_status in ("offline", "unknown"):
            return False  # a dead machine the operator has not noticed yet
        if phase == "Ready" and rental.actual_status == "running":
            ready += 1
    return ready >= want and not orphans(sim, cluster)


def snapshot(sim: VastaiServer, cluster: RunningCluster) -> list[str]:
    """One line per GpuInstance and its rental (for a run's timeline)."""
    lines = []
    for inst in cluster.list(API, "GpuInstance"):
        st = inst.get("status") or {}
        rental = sim.state.rentals.get(st.get("contractId") or -1)
        comfy = getattr(rental.comfy, "crashed", None) if rental is not None else None
        probe = st.get("lastProbe") or {}
        lines.append(
            f"{inst['metadata']['name']} {st.get('phase')} {st.get('reason')} "
            f"contract={st.get('contractId')} rental={rental.actual_status if rental else None} "
            f"comfy_crashed={comfy} jobs={st.get('jobs')} probes={st.get('probeFailures')} "
            f"last_probe={probe.get('time')} {probe.get('reason')}"
            + (" deleting" if inst["metadata"].get("deletionTimestamp") else "")
        )
    return lines


async def wait_until(probe: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``probe()`` holds; TimeoutError after ``timeout``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not probe():
        if loop.time() - start > timeout:
            raise TimeoutError(f"not reached in {timeout:g} s: {what}")
        await asyncio.sleep(0.05)
    return loop.time() - start
