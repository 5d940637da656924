"""A Ready instance's daemon steps only when something is due (issue 16): its object, its
pool's spec, its listing row or the credit state changed, or its probe or its status
refresh is due (:mod:`warmpool.operator.decisions.quiet`); otherwise the step would end as
the last one did and is skipped. These tests drive :func:`reconcile.run` with a fake step."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import kopf
import pytest

from warmpool.crds.common import format_time
from warmpool.crds.gpupool import GpuPool
from warmpool.operator.adapters.inventory import Inventory
from warmpool.operator.adapters.vastai_models import Instance
from warmpool.operator.controllers.instance import reconcile
from warmpool.operator.decisions.drift import BalanceSample
from warmpool.operator.deps import Deps
from warmpool.operator.settings import OperatorSettings

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
URL = "https://203.0.113.9:40123"
INTERVAL, PROBE_EVERY, REFRESH_EVERY = 5.0, 30.0, 60.0
LOG = logging.getLogger(__name__)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Stopper:
    """Stands for kopf's DaemonStopped: each timed wait moves the clock by its timeout and
    applies what ``then`` holds for that wait's number (1, 2...); stops after ``waits``."""

    def __init__(
        self, clock: Clock, waits: int, then: dict[int, Callable[[], None]] | None = None
    ) -> None:
        self.clock, self.left, self.then, self.waited = clock, waits, then or {}, 0
        self.forever = asyncio.Event()

    def __bool__(self) -> bool:
        return self.left <= 0

    async def wait(self, timeout: float | None = None) -> None:
        if timeout is None:
            await self.forever.wait()  # the step's stop watcher: cancelled after the step
            return
        self.left -= 1
        self.waited += 1
        self.clock.now += timedelta(seconds=timeout)
        if (change := self.then.get(self.waited)) is not None:
            change()
        await asyncio.sleep(0)


class Lister:
    def __init__(self) -> None:
        self.rows = [row()]

    async def list_all_instances(self) -> list[Instance]:
        return list(self.rows)


def row(**changes: Any) -> Instance:
    fields: dict[str, Any] = {
        "id": 7, "actual_status": "running", "intended_status": "running",
        "cur_state": "running", "public_ipaddr": "203.0.113.9",
        "ports": {"8188/tcp": [{"HostIp": "0.0.0.0", "HostPort": 40123}]}, **changes,
    }  # fmt: skip
    return Instance.model_validate(fields)


def instance_body(probed: datetime, version: str = "41") -> dict[str, Any]:
    return {
        "metadata": {"name": "p-1", "namespace": "default", "resourceVersion": version},
        "spec": {"pool": "p"},
        "status": {"phase": "Ready", "contractId": 7, "comfyUrl": URL, "probeFailures": 0,
                   "lastProbe": {"time": format_time(probed), "ok": True}},
    }  # fmt: skip


def pool_model(generation: int = 1) -> GpuPool:
    return GpuPool.from_body({"metadata": {"name": "p", "namespace": "default", "uid": "u",
                                           "generation": generation}, "spec": {}})  # fmt: skip


class World:
    """Deps with the pool cached, a listing, and a step that records when it ran (it
    'probes' and 'refreshes' the way liveness.follow does when they are due)."""

    def __init__(self, deps: Deps, clock: Clock, lister: Lister) -> None:
        self.deps, self.clock, self.lister = deps, clock, lister
        self.raw = instance_body(START)
        self.body = kopf.Body(self.raw)
        self.steps: list[float] = []
        self.ready = True
        self.reads = 0

    async def step(self, deps: Deps, body: dict[str, Any], log: Any) -> bool:
        now = self.clock.now
        self.steps.append((now - START).total_seconds())
        key = "default/p-1"
        probed = deps.probed_at.get(key)
        if probed is None or (now - probed).total_seconds() >= PROBE_EVERY:
            deps.probed_at[key] = now
        written = datetime.fromisoformat(self.raw["status"]["lastProbe"]["time"])
        if (now - written).total_seconds() >= REFRESH_EVERY:
            self.write(lastProbe={"time": format_time(now), "ok": True})
        return self.ready

    def write(self, **status: Any) -> None:
        """A status write of this process's: a new version, seen by its watch at once."""
        version = str(int(self.raw["metadata"]["resourceVersion"]) + 1)
        self.raw["metadata"]["resourceVersion"] = version
        self.raw["status"].update(status)
        self.deps.seen_versions["default/p-1"] = version

    async def get(self, res: Any, name: str, namespace: str) -> dict[str, Any]:
        """The kube adapter's read: the object as it is now."""
        self.reads += 1
        return copy.deepcopy(self.raw)

    async def run(
        self, intervals: int, then: dict[int, Callable[[], None]] | None = None
    ) -> list[float]:
        stopped = Stopper(self.clock, intervals, then)
        await reconcile.run(stopped, self.body, self.deps, LOG)  # type: ignore[arg-type]
        return self.steps


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch) -> Any:
    clock = Clock()
    lister = Lister()
    settings = OperatorSettings(reconcile_interval=INTERVAL, ready_probe_interval=PROBE_EVERY,
                                status_refresh=REFRESH_EVERY, inventory_refresh=INTERVAL,
                                comfy_allow_plain_http=False)  # fmt: skip
    async with httpx.AsyncClient() as http:
        deps = Deps(settings=settings, http=http, now=clock, monotonic=lambda: 0.0)
        # The listing is taken again at every question (a fresh row each interval).
        deps.opened_inventory = Inventory(lister, refresh_seconds=0.0)
        deps.pool_models[("default", "p")] = pool_model()
        deps.seen_versions["default/p-1"] = "41"
        w = World(deps, clock, lister)
        deps.opened_kube = w  # type: ignore[assignment]
        monkeypatch.setattr(reconcile, "step", w.step)
        # The pause between passes is the Stopper's timed wait (the simulated clock).
        monkeypatch.setattr(reconcile, "pause", lambda stopped, seconds: stopped.wait(seconds))
        yield w


async def test_idle_ready_instance_steps_when_its_probe_or_refresh_is_due(world: World) -> None:
    # t=0: the first step ends Ready; t=5: a step that begins Ready records what it saw;
    # then only the probe (every 30 s) and the status refresh (every 60 s) step it.
    assert await world.run(26) == [0, 5, 30, 60, 90, 120]
    assert world.reads == 0  # the body at hand shows the versions written


@pytest.mark.parametrize(
    "change",
    ["object", "pool", "row", "credit", "phase", "probe", "address", "vanished", "lagging"],
)
async def test_any_change_steps_it_at_the_next_interval(world: World, change: str) -> None:
    def apply() -> None:
        if change == "object":  # someone else's write, seen by the watch
            world.raw["metadata"]["resourceVersion"] = "99"
            world.deps.seen_versions["default/p-1"] = "99"
        elif change == "pool":
            world.deps.pool_models[("default", "p")] = pool_model(generation=2)
        elif change == "row":
            world.lister.rows = [row(status_msg="Error response from daemon: OCI runtime")]
        elif change == "credit":
            world.deps.balance_samples.append(BalanceSample(at=START, credit=0.0,
                                                            accounted=1.0))  # fmt: skip
        elif change == "phase":
            world.raw["status"]["phase"] = "Draining"
        elif change == "probe":
            world.raw["status"]["probeFailures"] = 1
        elif change == "address":
            world.lister.rows = [row(public_ipaddr="203.0.113.10")]
        elif change == "vanished":
            world.lister.rows = []
        elif change == "lagging":  # written, the watch has not shown it yet: read again
            world.deps.seen_versions["default/p-1"] = "42"

    # Stepped at t=0 and 5; skipped at 10; the change comes before t=15.
    steps = await world.run(4, then={3: apply})
    assert steps == [0, 5, 15], change
    assert world.reads == (1 if change == "lagging" else 0)


async def test_a_step_that_does_not_end_ready_keeps_stepping(world: World) -> None:
    world.ready = False
    await world.run(3)
    # Not Ready: the probe interval spaces the steps (settings.probe_interval), all run.
    assert len(world.steps) == 3
