"""The inventory cache: one listing per refresh interval, single-flight, invalidation."""

from __future__ import annotations

import asyncio

import pytest

from warmpool.operator.adapters import inventory, vastai


class FakeLister:
    def __init__(self) -> None:
        self.calls = 0
        self.rows: list[vastai.Instance] = []
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def list_all_instances(self) -> list[vastai.Instance]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return list(self.rows)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def inst(id_: int, label: str | None) -> vastai.Instance:
    return vastai.Instance.model_validate({"id": id_, "label": label})


@pytest.fixture
def lister() -> FakeLister:
    fake = FakeLister()
    fake.rows = [
        inst(1, "warmpool.ns.sdxl.ginst-a"),
        inst(2, "warmpool.ns.sdxl.ginst-b"),
        inst(3, "warmpool.ns.flux.ginst-c"),
        inst(4, "warmpool.other.sdxl.ginst-d"),
        inst(5, None),
        inst(6, "someone-else"),
    ]
    return fake


async def test_one_listing_serves_every_question_within_the_interval(lister: FakeLister) -> None:
    clock = Clock()
    inv = inventory.Inventory(lister, refresh_seconds=5.0, clock=clock)
    assert [i.id for i in await inv.by_pool("ns", "sdxl")] == [1, 2]
    assert [i.id for i in await inv.by_pool("ns", "flux")] == [3]
    assert [i.id for i in await inv.by_label_prefix("warmpool.")] == [1, 2, 3, 4]
    assert [i.id for i in await inv.by_label("someone-else")] == [6]
    assert (await inv.by_id(5)) == inst(5, None)
    assert len(await inv.instances()) == 6
    assert lister.calls == 1
    clock.now = 4.9
    await inv.instances()
    assert lister.calls == 1
    assert inv.age == pytest.approx(4.9)
    clock.now = 5.0
    await inv.instances()
    assert lister.calls == 2


async def test_concurrent_callers_share_one_listing(lister: FakeLister) -> None:
    inv = inventory.Inventory(lister, refresh_seconds=5.0, clock=Clock())
    lister.gate = asyncio.Event()
    callers = [asyncio.create_task(inv.by_pool("ns", f"pool-{n}")) for n in range(50)]
    await asyncio.sleep(0)
    lister.gate.set()
    await asyncio.gather(*callers)
    assert lister.calls == 1
    assert inv.fetches == 1


async def test_invalidate_forces_a_new_listing(lister: FakeLister) -> None:
    inv = inventory.Inventory(lister, refresh_seconds=60.0, clock=Clock())
    await inv.instances()
    lister.rows.append(inst(7, "warmpool.ns.sdxl.ginst-new"))
    assert len(await inv.by_pool("ns", "sdxl")) == 2
    inv.invalidate()
    assert len(await inv.by_pool("ns", "sdxl")) == 3
    assert lister.calls == 2


async def test_listing_overlapping_invalidate_is_not_cached(lister: FakeLister) -> None:
    inv = inventory.Inventory(lister, refresh_seconds=60.0, clock=Clock())
    lister.gate = asyncio.Event()
    first = asyncio.create_task(inv.instances())
    await asyncio.sleep(0)
    inv.invalidate()  # e.g. a create finished while the listing was in flight
    lister.gate.set()
    await first
    await inv.instances()
    assert lister.calls == 2


async def test_failure_reaches_every_waiter_and_is_not_cached(lister: FakeLister) -> None:
    inv = inventory.Inventory(lister, refresh_seconds=60.0, clock=Clock())
    lister.gate = asyncio.Event()
    lister.fail = RuntimeError("vast down")
    callers = [asyncio.create_task(inv.instances()) for _ in range(3)]
    await asyncio.sleep(0)
    lister.gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert lister.calls == 1
    lister.fail = None
    assert len(await inv.instances()) == 6
    assert lister.calls == 2


async def test_one_cancelled_caller_does_not_cancel_the_listing(lister: FakeLister) -> None:
    inv = inventory.Inventory(lister, refresh_seconds=60.0, clock=Clock())
    lister.gate = asyncio.Event()
    quitter = asyncio.create_task(inv.instances())
    stayer = asyncio.create_task(inv.instances())
    await asyncio.sleep(0)
    quitter.cancel()
    lister.gate.set()
    assert len(await stayer) == 6
    with pytest.raises(asyncio.CancelledError):
        await quitter
    await inv.aclose()


async def test_pool_label_prefix() -> None:
    assert inventory.pool_label_prefix("ns", "sdxl") == "warmpool.ns.sdxl."
