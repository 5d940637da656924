"""An idle pool costs next to nothing per interval (issue 16): its reconcile lists its
GpuInstances again only when one of them changed beyond its clock fields, when it changed
them itself, or when the listing is older than the status refresh; and it writes its status
only when something besides the spend (which moves with the clock) changed, or the spend
was last written a status refresh ago."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from warmpool.operator.adapters import kube
from warmpool.operator.controllers import cache, pool, views
from warmpool.operator.deps import Deps
from warmpool.operator.settings import OperatorSettings


class FakeKube:
    """Counts the lists and status patches of the pool controller."""

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        self.bodies = bodies
        self.lists = 0
        self.patches: list[dict[str, Any]] = []

    async def list(self, res: kube.Resource, namespace: str | None, **_: Any) -> list[Any]:
        self.lists += 1
        return copy.deepcopy(self.bodies)

    async def patch(self, res: kube.Resource, name: str, namespace: str, body: Any,
                    **_: Any) -> dict[str, Any]:  # fmt: skip
        self.patches.append(body["status"])
        return {"metadata": {"resourceVersion": "2"}, **body}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def instance(name: str = "p-1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "resourceVersion": "7",
                     "labels": {"warmpool.dev/pool": "p"}},
        "spec": {"pool": "p", "templateHash": "h"},
        "status": {"phase": "Ready", "cost": 0.1,
                   "lastProbe": {"time": "2026-01-01T00:00:00Z", "ok": True}, **status},
    }  # fmt: skip


@pytest.fixture
async def deps() -> Any:
    async with httpx.AsyncClient() as http:
        d = Deps(settings=OperatorSettings(status_refresh=60.0), http=http, monotonic=Clock())
        d.opened_kube = FakeKube([instance()])  # type: ignore[assignment]
        yield d


def moved(deps: Deps, body: dict[str, Any]) -> bool:
    before = cache.instance_mark(deps, "default", "p")
    cache.observe_instance(deps, body, deleted=False)
    return cache.instance_mark(deps, "default", "p") != before


@pytest.mark.parametrize(
    ("change", "counts"),
    [
        pytest.param({"cost": 0.2}, False, id="cost-only"),
        pytest.param({"lastProbe": {"time": "2026-01-01T00:01:00Z", "ok": True}}, False,
                     id="probe-time-only"),
        pytest.param({"lastProbe": {"time": "2026-01-01T00:01:00Z", "ok": False}}, True,
                     id="probe-verdict"),
        pytest.param({"phase": "Draining"}, True, id="phase"),
        pytest.param({"jobs": 1}, True, id="busy"),
    ],
)  # fmt: skip
async def test_what_moves_the_pools_instance_mark(
    deps: Deps, change: dict[str, Any], counts: bool
) -> None:
    assert moved(deps, instance())  # first sight
    later = instance(**change)
    later["metadata"]["resourceVersion"] = "8"
    assert moved(deps, later) is counts


async def test_a_deleted_instance_moves_the_mark(deps: Deps) -> None:
    cache.observe_instance(deps, instance(), deleted=False)
    before = cache.instance_mark(deps, "default", "p")
    cache.observe_instance(deps, instance(), deleted=True)
    assert cache.instance_mark(deps, "default", "p") == before + 1


async def test_listing_is_kept_until_something_changes(deps: Deps) -> None:
    fake: FakeKube = deps.kube  # type: ignore[assignment]
    clock: Clock = deps.monotonic  # type: ignore[assignment]
    assert [b["metadata"]["name"] for b in await pool.instances_of(deps, "default", "p")] == ["p-1"]
    await pool.instances_of(deps, "default", "p")
    assert fake.lists == 1, "nothing changed: the listing holds"
    cache.observe_instance(deps, instance(cost=0.5), deleted=False)  # first sight counts
    await pool.instances_of(deps, "default", "p")
    assert fake.lists == 2
    cache.observe_instance(deps, instance(cost=0.9), deleted=False)  # the clock only
    await pool.instances_of(deps, "default", "p")
    assert fake.lists == 2
    cache.drop_listing(deps, "default", "p")  # the pool changed its instances itself
    await pool.instances_of(deps, "default", "p")
    assert fake.lists == 3
    clock.t += 60.0  # a listing never outlives the status refresh
    await pool.instances_of(deps, "default", "p")
    assert fake.lists == 4


async def test_an_event_during_the_listing_lists_again(deps: Deps) -> None:
    """The mark is read before the list: a change the list may have missed lists again."""
    fake: FakeKube = deps.kube  # type: ignore[assignment]
    original = fake.list

    async def racing(*args: Any, **kwargs: Any) -> list[Any]:
        cache.observe_instance(deps, instance(phase="Draining"), deleted=False)
        return await original(*args, **kwargs)

    fake.list = racing  # type: ignore[method-assign]
    await pool.instances_of(deps, "default", "p")
    fake.list = original  # type: ignore[method-assign]
    await pool.instances_of(deps, "default", "p")
    assert fake.lists == 2


STATUS = {"replicas": 1, "readyReplicas": 1, "spendToday": 1.0, "breakerUntil": None,
          "conditions": [{"type": "Ready", "status": "True"}]}  # fmt: skip


async def test_status_moved_only_by_the_clock_is_written_once_a_refresh(deps: Deps) -> None:
    fake: FakeKube = deps.kube  # type: ignore[assignment]
    clock: Clock = deps.monotonic  # type: ignore[assignment]
    current = {k: v for k, v in STATUS.items() if v is not None}
    await pool.write_status(deps, "default", "p", current, dict(STATUS))
    assert fake.patches == [], "nothing changed at all"
    await pool.write_status(deps, "default", "p", current, {**STATUS, "spendToday": 1.1})
    assert len(fake.patches) == 1, "not written yet by this process: written"
    clock.t += 5.0
    await pool.write_status(deps, "default", "p", current, {**STATUS, "spendToday": 1.2})
    assert len(fake.patches) == 1, "only the spend moved, written 5 s ago"
    await pool.write_status(deps, "default", "p", current, {**STATUS, "readyReplicas": 0})
    assert len(fake.patches) == 2, "a real change is written at once"
    clock.t += 60.0
    await pool.write_status(deps, "default", "p", current, {**STATUS, "spendToday": 1.3})
    assert len(fake.patches) == 3, "the spend is refreshed every status refresh"


async def test_the_budget_message_moved_by_the_spend_waits_for_the_refresh(deps: Deps) -> None:
    """A pool spending $16/h moves "$X today" in its budget condition every interval or
    so; that alone is written once a refresh, not once a reconcile."""
    fake: FakeKube = deps.kube  # type: ignore[assignment]
    clock: Clock = deps.monotonic  # type: ignore[assignment]

    def budget(spend: float) -> dict[str, Any]:
        cond = {"type": "BudgetExceeded", "status": "False", "reason": "WithinBudget",
                "message": f"$16.38/h, ${spend:.2f} today"}  # fmt: skip
        return {**STATUS, "spendToday": spend, "conditions": [cond]}

    await pool.write_status(deps, "default", "p", budget(1.0), budget(1.01))
    assert len(fake.patches) == 1
    clock.t += 5.0
    await pool.write_status(deps, "default", "p", budget(1.01), budget(1.02))
    assert len(fake.patches) == 1, "only the spend moved, written 5 s ago"
    clock.t += 300.0
    await pool.write_status(deps, "default", "p", budget(1.01), budget(1.9))
    assert len(fake.patches) == 2, "written again at the status refresh"


def test_an_unchanged_instance_is_parsed_once_per_version() -> None:
    """A scale-up of N instances reads its N siblings N times under the pool's lock: each
    version of a body is parsed once (the memo is keyed by uid and resourceVersion)."""
    body = instance()
    body["metadata"]["uid"] = "u-1"
    first = views.instance_view(body)
    assert views.instance_view(copy.deepcopy(body)) is first
    changed = copy.deepcopy(body)
    changed["metadata"]["resourceVersion"] = "8"
    changed["status"]["phase"] = "Draining"
    assert views.instance_view(changed).phase == "Draining"
    assert views.parsed_instance(changed).status.phase == "Draining"
