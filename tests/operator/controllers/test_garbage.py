"""The orphan sweep in namespaced mode (``WARMPOOL_NAMESPACE=a,b``): it lists GpuInstances
per served namespace (the chart grants no cluster-wide read then) and destroys only the
orphaned rentals of those namespaces; another namespace's rentals are left alone."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from warmpool.crds.common import namespace_of_label, rental_label
from warmpool.operator.adapters import kube
from warmpool.operator.adapters.vastai_models import Instance
from warmpool.operator.controllers.instance import garbage
from warmpool.operator.deps import Deps
from warmpool.operator.settings import OperatorSettings

LIVE_UID = "4d1b5c7e-0000-4000-8000-00000000000a"


class FakeKube:
    """GpuInstances by namespace; records the namespace of every list (None: all)."""

    def __init__(self, bodies: dict[str, list[dict[str, Any]]]) -> None:
        self.bodies = bodies
        self.listed: list[str | None] = []

    async def list(self, res: kube.Resource, namespace: str | None, **_: Any) -> list[Any]:
        assert res == kube.GPUINSTANCES
        self.listed.append(namespace)
        found = [b for ns, bs in self.bodies.items() if namespace in (None, ns) for b in bs]
        return copy.deepcopy(found)


class FakeInventory:
    def __init__(self, rentals: list[Instance]) -> None:
        self.rentals = rentals

    async def by_label_prefix(self, prefix: str) -> list[Instance]:
        return [r for r in self.rentals if (r.label or "").startswith(prefix)]

    def invalidate(self) -> None:
        pass


class FakeVastai:
    def __init__(self) -> None:
        self.destroyed: list[int] = []

    async def destroy_instance(self, rental_id: int) -> bool:
        self.destroyed.append(rental_id)
        return True


def rental(rental_id: int, namespace: str, uid: str) -> Instance:
    return Instance.model_validate({"id": rental_id, "label": rental_label(namespace, "p", uid)})


RENTALS = [
    rental(1, "a", LIVE_UID),  # its GpuInstance exists in a
    rental(2, "a", "4d1b5c7e-0000-4000-8000-00000000000b"),  # orphaned, served
    rental(3, "b", "4d1b5c7e-0000-4000-8000-00000000000c"),  # orphaned, served
    rental(4, "c", "4d1b5c7e-0000-4000-8000-00000000000d"),  # another namespace's
]
INSTANCES = {"a": [{"metadata": {"name": "p-1", "namespace": "a", "uid": LIVE_UID}}],
             "c": [{"metadata": {"name": "p-9", "namespace": "c", "uid": "unseen"}}]}  # fmt: skip


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.mark.parametrize(
    ("namespace", "listed", "destroyed"),
    [
        pytest.param("a,b", ["a", "b"], [2, 3], id="namespaced"),
        pytest.param(" a , b ", ["a", "b"], [2, 3], id="namespaced-spaces"),
        pytest.param(None, [None], [2, 3, 4], id="cluster-wide"),
    ],
)
async def test_the_sweep_lists_and_judges_the_served_namespaces_only(
    http: httpx.AsyncClient, namespace: str | None, listed: list[str | None], destroyed: list[int]
) -> None:
    settings = OperatorSettings(namespace=namespace, orphan_grace=0.0)
    deps = Deps(settings=settings, http=http, monotonic=lambda: 100.0)
    deps.opened_kube = fake_kube = FakeKube(INSTANCES)  # type: ignore[assignment]
    deps.opened_inventory = FakeInventory(RENTALS)  # type: ignore[assignment]
    deps.opened_vastai = vastai = FakeVastai()  # type: ignore[assignment]
    assert sorted(await garbage.sweep(deps)) == destroyed
    assert sorted(vastai.destroyed) == destroyed
    assert fake_kube.listed == listed


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        pytest.param("warmpool.a.p.uid", "a", id="ours"),
        pytest.param("warmpool.team-x.pool.with.dots.uid", "team-x", id="dotted-pool"),
        pytest.param("warmpool.a", None, id="short"),
        pytest.param("someone-elses-box", None, id="not-ours"),
        pytest.param(None, None, id="no-label"),
    ],
)
def test_namespace_of_label(label: str | None, expected: str | None) -> None:
    assert namespace_of_label(label) == expected
