"""update_status says which of "gone" and "gave up" happened (both were None)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from warmpool.operator import errors
from warmpool.operator.adapters import kube
from warmpool.operator.adapters.status import Update, update_status
from warmpool.sim.cluster import RunningCluster


class FakeKube:
    """get/patch of one object; ``conflicts`` patches answer 409 first."""

    def __init__(self, obj: dict[str, Any] | None, *, conflicts: int = 0,
                 vanish: bool = False) -> None:  # fmt: skip
        self.obj, self.conflicts, self.vanish = obj, conflicts, vanish
        self.patches: list[dict[str, Any]] = []

    async def get(self, res: kube.Resource, name: str, namespace: str | None = None) -> Any:
        return None if self.obj is None else {**self.obj}

    async def patch(self, res: kube.Resource, name: str, namespace: str | None, body: Any,
                    *, subresource: str | None = None) -> Any:  # fmt: skip
        self.patches.append(body)
        if self.vanish:
            raise errors.KubeNotFoundError("gone")
        if self.conflicts > 0:
            self.conflicts -= 1
            raise errors.KubeConflictError("stale")
        return {**(self.obj or {}), "status": body["status"]}


OBJ = {"metadata": {"name": "p", "resourceVersion": "7"}, "status": {"n": 1}}


def bump(status: dict[str, Any]) -> dict[str, Any]:
    return {"n": status["n"] + 1}


@pytest.mark.parametrize(
    ("fake", "mutate", "outcome", "patches"),
    [
        pytest.param(FakeKube(OBJ), bump, Update.WRITTEN, 1, id="written"),
        pytest.param(FakeKube(OBJ, conflicts=2), bump, Update.WRITTEN, 3,
                     id="written-after-conflicts"),
        pytest.param(FakeKube(OBJ), lambda _: None, Update.UNCHANGED, 0, id="nothing-to-write"),
        pytest.param(FakeKube(None), bump, Update.GONE, 0, id="gone-before"),
        pytest.param(FakeKube(OBJ, vanish=True), bump, Update.GONE, 1, id="gone-while-writing"),
        pytest.param(FakeKube(OBJ, conflicts=99), bump, Update.GAVE_UP, 3, id="gave-up"),
    ],
)  # fmt: skip
async def test_update_status_says_what_happened(
    fake: FakeKube, mutate: Any, outcome: Update, patches: int
) -> None:
    done = await update_status(fake, kube.GPUPOOLS, "ns", "p", mutate, attempts=3)  # type: ignore[arg-type]
    assert done.outcome is outcome
    assert len(fake.patches) == patches
    if outcome is Update.WRITTEN:
        assert done.obj is not None and done.obj["status"] == {"n": 2}
        assert fake.patches[-1]["metadata"] == {"resourceVersion": "7"}


async def test_writers_of_one_object_take_turns_so_none_gives_up(cluster: RunningCluster) -> None:
    """40 instances recording an unavailable offer on their pool at once, each a
    read-modify-write with only 2 attempts, against the emulated API (real resource
    versions, real 409s): in turns every record lands; all at once most gave up."""
    cluster.create({"apiVersion": "warmpool.dev/v1alpha1", "kind": "GpuPool",
                    "metadata": {"name": "p", "namespace": "default"},
                    "spec": {"replicas": 0}})  # fmt: skip
    until = "2026-12-04T00:00:00Z"

    def add(offer: int) -> Any:
        def mutate(status: dict[str, Any]) -> dict[str, Any]:
            offers = [*(status.get("unavailableOffers") or []), {"offerId": offer, "until": until}]
            return {"unavailableOffers": offers}

        return mutate

    async with kube.KubeClient(cluster.url) as client:
        done = await asyncio.gather(*(
            update_status(client, kube.GPUPOOLS, "default", "p", add(i), attempts=2)
            for i in range(40)
        ))  # fmt: skip
        pool = await client.get(kube.GPUPOOLS, "p", "default")
    assert [d.outcome for d in done] == [Update.WRITTEN] * 40
    assert pool is not None
    recorded = sorted(o["offerId"] for o in pool["status"]["unavailableOffers"])
    assert recorded == list(range(40))
