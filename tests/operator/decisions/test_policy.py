"""T1: the pool policy — rentals, releases, drains, budget, breaker, hedge, conditions."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import GpuPoolSpec, RentalOutcome
from warmpool.operator.decisions import breaker, policy, warmup
from warmpool.operator.decisions.conditions import SetCondition
from warmpool.operator.decisions.policy import (
    Drain,
    InstanceView,
    PoolPlan,
    Release,
    Rent,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HASH = "h1"


def inst(
    name: str,
    phase: Phase = "Ready",
    *,
    age: timedelta = 60 * MIN,
    idle: timedelta | None = None,
    jobs: int = 0,
    price: float = 0.4,
    template: str = HASH,
    reason: str = "Warm",
    deleting: bool = False,
) -> InstanceView:
    """An instance created ``age`` ago; a Ready/Draining one has been idle for ``idle``."""
    created = NOW - age
    ready_at = None
    if phase in ("Ready", "Draining"):
        ready_at = NOW - idle if idle is not None else created + 5 * MIN
    return InstanceView(
        name=name,
        phase=phase,
        created_at=created,
        rented_at=created if phase != "Pending" else None,
        ready_at=ready_at,
        jobs=jobs,
        template_hash=template,
        price_per_hour=price,
        machine_id=hash(name) % 1000,
        reason=reason,
        deleting=deleting,
    )


def outcome(name: str, ok: bool, ago: timedelta, reason: str = "LoadingTimeout") -> RentalOutcome:
    return RentalOutcome(
        instance=name,
        ok=ok,
        reason="" if ok else reason,
        time=(NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def spec(**fields: Any) -> GpuPoolSpec:
    """A pool spec; unhedged unless ``hedge`` is given (the tables count rentals)."""
    return GpuPoolSpec.model_validate({"hedge": 0, **fields})


def plan(**overrides: Any) -> PoolPlan:
    kwargs: dict[str, Any] = {
        "spec": spec(),
        "instances": [],
        "queued_jobs": 0,
        "template_hash": HASH,
        "recent_rentals": [],
        "breaker_until": None,
        "spend_today": 0.0,
        "now": NOW,
        "rental_price": 0.4,
    }
    kwargs.update(overrides)
    return policy.plan_pool(**kwargs)


Intent = tuple[str, ...]


def intents(p: PoolPlan) -> list[Intent]:
    """Every intent of a plan, in order: releases, drains, rents."""
    return (
        [("release", r.name, r.reason) for r in p.releases]
        + [("drain", d.name, d.reason) for d in p.drains]
        + [("rent", r.reason) for r in p.rents]
    )


def rent(reason: str, n: int = 1) -> list[Intent]:
    return [("rent", reason)] * n


def release(name: str, reason: str) -> Intent:
    return ("release", name, reason)


def drain(name: str, reason: str) -> Intent:
    return ("drain", name, reason)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # Keep `replicas` warm.
        pytest.param({}, rent("Warm"), id="empty-pool-rents-one"),
        pytest.param({"spec": spec(replicas=3)}, rent("Warm", 3), id="rents-three"),
        pytest.param({"spec": spec(replicas=0)}, [], id="zero-replicas-rents-nothing"),
        pytest.param(
            {"spec": spec(replicas=2), "instances": [inst("a")]},
            rent("Warm"),
            id="tops-up-to-replicas",
        ),
        pytest.param(
            {
                "spec": spec(replicas=3),
                "instances": [
                    inst("a"),
                    inst("b", "Provisioning", age=2 * MIN),
                    inst("c", "Pending", age=MIN),
                ],
            },
            [],
            id="provisioning-and-pending-count-as-coming",
        ),
        pytest.param(
            {"instances": [inst("a", deleting=True)]},
            rent("Warm"),
            id="deleting-does-not-count",
        ),
        pytest.param(
            {"instances": [inst("a", "Terminating")]},
            rent("Warm"),
            id="terminating-does-not-count",
        ),
        # Demand.
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3),
                "instances": [inst("a", jobs=1)],
                "queued_jobs": 2,
            },
            rent("Demand", 2),
            id="queued-jobs-scale-up",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=4, jobs={"concurrencyPerInstance": 2}),
                "instances": [inst("a", jobs=1)],
                "queued_jobs": 2,
            },
            rent("Demand"),
            id="free-slots-of-concurrency-count",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3),
                "instances": [inst("a", jobs=1)],
                "queued_jobs": 10,
            },
            rent("Demand", 2),
            id="demand-stops-at-max-replicas",
        ),
        pytest.param(
            {"instances": [inst("a", jobs=1)], "queued_jobs": 5},
            [],
            id="no-max-replicas-no-demand-scaling",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3),
                "instances": [inst("a", jobs=1), inst("b", "Starting", age=3 * MIN)],
                "queued_jobs": 1,
            },
            [],
            id="coming-instance-takes-the-queued-job",
        ),
        pytest.param(
            {"spec": spec(replicas=0, maxReplicas=2), "queued_jobs": 1},
            rent("Demand"),
            id="scale-from-zero-on-demand",
        ),
        pytest.param(
            {
                "spec": spec(replicas=2, maxReplicas=4),
                "queued_jobs": 3,
            },
            rent("Warm", 2) + rent("Demand"),
            id="warm-first-then-demand",
        ),
        # Idle release above replicas.
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3),
                "instances": [inst("a", idle=20 * MIN), inst("b", idle=20 * MIN, price=0.5)],
            },
            [release("b", "Idle")],
            id="idle-release-most-expensive",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3),
                "instances": [
                    inst("a", idle=20 * MIN, age=60 * MIN),
                    inst("b", idle=20 * MIN, age=30 * MIN),
                ],
            },
            [release("b", "Idle")],
            id="idle-release-newest-on-equal-price",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3),
                "instances": [inst("a", idle=20 * MIN), inst("b", idle=10 * MIN)],
            },
            [release("a", "Idle")],
            id="only-the-long-idle-one",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3),
                "instances": [inst("a", idle=3 * MIN), inst("b", idle=3 * MIN)],
            },
            [],
            id="not-idle-long-enough",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3),
                "instances": [inst("a", idle=4 * MIN), inst("b", idle=1 * MIN)],
            },
            [release("a", "Idle")],
            id="idle-exactly-timeout",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3, idleTimeout="2m"),
                "instances": [inst("a", idle=3 * MIN), inst("b", idle=3 * MIN, price=0.3)],
            },
            [release("a", "Idle")],
            id="idle-timeout-per-pool",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3),
                "instances": [
                    inst("a", idle=60 * MIN, jobs=1, price=0.9),
                    inst("b", idle=20 * MIN),
                ],
            },
            [release("b", "Idle")],
            id="idle-release-never-the-busy-one",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3),
                "instances": [inst("a", jobs=1, idle=60 * MIN), inst("b", jobs=1, idle=60 * MIN)],
            },
            [],
            id="two-busy-above-replicas-kept",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3),
                "instances": [inst("a", idle=30 * MIN), inst("b", idle=30 * MIN)],
                "queued_jobs": 2,
            },
            [],
            id="queued-jobs-keep-both",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=3),
                "instances": [inst("a", idle=30 * MIN), inst("b", idle=30 * MIN, age=40 * MIN)],
                "queued_jobs": 1,
            },
            [release("b", "Idle")],
            id="one-queued-job-needs-one-of-two",
        ),
        # Scale down below the ceiling (kubectl scale).
        pytest.param(
            {"instances": [inst("a", idle=MIN), inst("b", idle=MIN, price=0.5)]},
            [release("b", "ScaledDown")],
            id="scale-2-to-1-releases-at-once",
        ),
        pytest.param(
            {"spec": spec(replicas=0), "instances": [inst("a", idle=MIN), inst("b", idle=MIN)]},
            [release("a", "ScaledDown"), release("b", "ScaledDown")],
            id="scale-to-zero",
        ),
        pytest.param(
            {"instances": [inst("a", jobs=1), inst("b", jobs=1, price=0.5)]},
            [drain("b", "ScaledDown")],
            id="scale-down-drains-a-busy-instance",
        ),
        pytest.param(
            {"instances": [inst("a", jobs=1, price=0.9), inst("b", idle=MIN)]},
            [release("b", "ScaledDown")],
            id="scale-down-prefers-the-idle-one",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, maxReplicas=2),
                "instances": [
                    inst("a", idle=30 * MIN),
                    inst("b", idle=30 * MIN, price=0.5),
                    inst("c", idle=30 * MIN, price=0.6),
                ],
            },
            [release("c", "ScaledDown"), release("b", "Idle")],
            id="above-ceiling-then-idle",
        ),
        pytest.param(
            {"instances": [inst("a"), inst("b", "Starting", age=3 * MIN)]},
            [release("b", "Surplus")],
            id="not-ready-surplus-released-first",
        ),
        pytest.param(
            {
                "instances": [
                    inst("a"),
                    inst("s", "Starting", age=3 * MIN),
                    inst("p", "Provisioning", age=3 * MIN),
                    inst("n", "Pending", age=3 * MIN),
                ],
            },
            [release("n", "Surplus"), release("p", "Surplus"), release("s", "Surplus")],
            id="least-progressed-first",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1),
                "instances": [
                    inst("r", "Resuming", age=MIN),
                    inst("s", "Starting", age=9 * MIN),
                    inst("p", "Provisioning", age=3 * MIN),
                ],
            },
            [release("p", "Surplus"), release("s", "Surplus")],
            id="a-start-is-kept-over-fresh-rentals",
        ),
        pytest.param(
            {
                "spec": spec(replicas=2),
                "instances": [
                    inst("a"),
                    inst("old", "Provisioning", age=9 * MIN),
                    inst("new", "Provisioning", age=3 * MIN),
                ],
            },
            [release("new", "Surplus")],
            id="newest-not-ready-first",
        ),
        pytest.param(
            {
                "spec": spec(replicas=2),
                "instances": [
                    inst("a"),
                    inst("cheap", "Provisioning", age=3 * MIN, price=0.3),
                    inst("dear", "Provisioning", age=9 * MIN, price=0.6),
                ],
            },
            [release("dear", "Surplus")],
            id="dearest-not-ready-first",
        ),
        pytest.param(
            {
                "spec": spec(replicas=2),
                "instances": [inst("a", "Starting", age=3 * MIN), inst("b", "Starting")],
            },
            [],
            id="cold-start-not-released",
        ),
        pytest.param(
            {"instances": [inst("a", "Starting", age=3 * MIN), inst("b", "Renting", age=MIN)]},
            [release("b", "Surplus")],
            id="cold-scale-down-releases-a-booting-one",
        ),
        # Drift.
        pytest.param(
            {"instances": [inst("a", template="h0")]},
            [release("a", "Drifted"), *rent("Replacement")],
            id="drifted-idle-released-and-replaced",
        ),
        pytest.param(
            {"instances": [inst("a", template="h0", jobs=1)]},
            [drain("a", "Drifted"), *rent("Replacement")],
            id="drifted-busy-drained-and-replaced",
        ),
        pytest.param(
            {
                "instances": [
                    inst("a", "Draining", template="h0", jobs=1),
                    inst("b", "Starting", age=3 * MIN, reason="Replacement"),
                ]
            },
            [],
            id="draining-drifted-waits-for-its-job",
        ),
        pytest.param(
            {
                "instances": [
                    inst("a", "Draining", template="h0"),
                    inst("b", "Starting", age=3 * MIN, reason="Replacement"),
                ]
            },
            [release("a", "Drifted")],
            id="drained-drifted-released",
        ),
        pytest.param(
            {"instances": [inst("a", "Provisioning", template="h0")]},
            [release("a", "Drifted"), *rent("Replacement")],
            id="drifted-while-booting",
        ),
        pytest.param(
            {
                "spec": spec(replicas=3),
                "instances": [inst("a", template="h0"), inst("b"), inst("c")],
            },
            [release("a", "Drifted"), *rent("Replacement")],
            id="only-the-drifted-one-replaced",
        ),
        pytest.param(
            {"instances": [inst("a", "Draining", jobs=1), inst("b")]},
            [],
            id="draining-busy-kept",
        ),
        pytest.param(
            {"instances": [inst("a", "Draining"), inst("b")]},
            [release("a", "Drained")],
            id="drained-released",
        ),
        # Failed.
        pytest.param(
            {"instances": [inst("a", "Failed")]},
            [release("a", "Failed"), *rent("Replacement")],
            id="failed-released-and-replaced",
        ),
        pytest.param(
            {"instances": [inst("a", "Failed", deleting=True), inst("b", "Provisioning")]},
            [],
            id="failed-being-deleted-already-replaced",
        ),
        pytest.param(
            {
                "spec": spec(replicas=2),
                "instances": [inst("a", "Failed")],
            },
            [release("a", "Failed"), *rent("Replacement"), *rent("Warm")],
            id="one-replacement-per-failed",
        ),
        # Paused.
        pytest.param(
            {
                "spec": spec(replicas=2, paused=True),
                "instances": [
                    inst("a", jobs=1),
                    inst("b", "Pending", age=MIN),
                    inst("c", "Failed"),
                    inst("d", "Draining", jobs=1),
                    inst("e", deleting=True),
                ],
                "queued_jobs": 4,
            },
            [
                release("a", "Paused"),
                release("b", "Paused"),
                release("c", "Paused"),
                release("d", "Paused"),
            ],
            id="paused-releases-everything-even-busy",
        ),
        pytest.param(
            {"spec": spec(replicas=2, paused=True), "queued_jobs": 4},
            [],
            id="paused-rents-nothing",
        ),
        # Budget.
        pytest.param(
            {"spec": spec(replicas=3, budget={"maxHourlySpend": 1.0})},
            rent("Warm", 2),
            id="one-dollar-forty-cents-two-rentals",
        ),
        pytest.param(
            {
                "spec": spec(replicas=3, budget={"maxHourlySpend": 1.0}),
                "instances": [inst("a", "Provisioning"), inst("b", "Pending")],
            },
            [],
            id="budget-counts-provisioning",
        ),
        pytest.param(
            {
                "spec": spec(replicas=1, budget={"maxHourlySpend": 1.0}),
                "instances": [inst("a", "Terminating"), inst("b", "Failed", deleting=True)],
            },
            [],
            id="budget-counts-rentals-being-destroyed",
        ),
        pytest.param(
            {
                "spec": spec(replicas=2, budget={"maxDailySpend": 10.0}),
                "instances": [inst("a")],
                "spend_today": 9.5,
            },
            [],
            id="daily-cap-next-hour",
        ),
        pytest.param(
            {
                "spec": spec(replicas=2, budget={"maxDailySpend": 10.0}),
                "instances": [inst("a")],
                "spend_today": 9.2,
            },
            rent("Warm"),
            id="daily-cap-fits",
        ),
        pytest.param(
            {
                "spec": spec(
                    replicas=3, budget={"maxHourlySpend": 1.0}, offer={"maxPricePerHour": 0.6}
                ),
                "rental_price": None,
            },
            rent("Warm"),
            id="unknown-price-uses-max-price",
        ),
        pytest.param(
            {"spec": spec(replicas=3, budget={"maxHourlySpend": 1.0}), "rental_price": None},
            rent("Warm", 3),
            id="unknown-price-counts-zero",
        ),
        # Hedge.
        pytest.param({"spec": spec(hedge=1)}, rent("Warm") + rent("Hedge"), id="hedge-one"),
        pytest.param(
            {"spec": spec(replicas=2, hedge=2)},
            rent("Warm", 2) + rent("Hedge", 2),
            id="hedge-two-for-two",
        ),
        pytest.param(
            {
                "spec": spec(hedge=1),
                "instances": [
                    inst("a", "Provisioning", age=2 * MIN),
                    inst("b", "Starting", age=2 * MIN, reason="Hedge"),
                ],
            },
            [],
            id="hedged-candidates-kept-while-cold",
        ),
        pytest.param(
            {
                "spec": spec(hedge=1),
                "instances": [inst("a"), inst("b", "Starting", age=2 * MIN, reason="Hedge")],
            },
            [release("b", "Surplus")],
            id="hedge-loser-released",
        ),
        pytest.param(
            {
                "spec": spec(hedge=1),
                "instances": [inst("a", "Provisioning", age=12 * MIN), inst("b", reason="Hedge")],
            },
            [release("a", "Surplus")],
            id="hedge-won-warm-loser-released",
        ),
        pytest.param(
            {"spec": spec(hedge=1), "instances": [inst("a", "Provisioning", age=2 * MIN)]},
            [],
            id="no-hedge-when-nothing-must-be-rented",
        ),
        pytest.param(
            {"spec": spec(replicas=2, hedge=1), "instances": [inst("a", "Provisioning")]},
            rent("Warm") + rent("Hedge"),
            id="hedge-on-partial-cold-start",
        ),
        pytest.param(
            {"spec": spec(replicas=2, hedge=1), "instances": [inst("a")]},
            rent("Warm"),
            id="no-hedge-when-warm",
        ),
        pytest.param(
            {"spec": spec(replicas=0, maxReplicas=2, hedge=1), "queued_jobs": 1},
            rent("Demand") + rent("Hedge"),
            id="hedge-on-demand-from-zero",
        ),
        pytest.param(
            {"spec": spec(replicas=2, hedge=1, budget={"maxHourlySpend": 1.0})},
            rent("Warm", 2),
            id="hedge-within-budget-only",
        ),
        pytest.param(
            {"spec": spec(hedge=1), "instances": [inst("a", "Failed")]},
            [release("a", "Failed"), *rent("Replacement"), *rent("Hedge")],
            id="hedged-replacement",
        ),
    ],
)
def test_plan_intents(overrides: dict[str, Any], expected: list[Intent]) -> None:
    assert intents(plan(**overrides)) == expected


def conditions(p: PoolPlan) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in p.conditions}


def test_steady_pool_whole_plan() -> None:
    p = plan(spec=spec(replicas=1), instances=[inst("a")])
    assert p == PoolPlan(
        rents=[],
        releases=[],
        drains=[],
        conditions=[
            SetCondition("Ready", "True", "ReplicasReady", "1/1 ready"),
            SetCondition("ScalingUp", "False", "Steady", "1/1 ready"),
            SetCondition("Degraded", "False", "Healthy", "rentals succeed"),
            SetCondition("BudgetExceeded", "False", "WithinBudget", "$0.40/h, $0.00 today"),
            SetCondition("RentalsHealthy", "True", "Healthy", "0 of 0 recent rentals failed"),
            SetCondition("Paused", "False", "Running", "the pool is running"),
        ],
        breaker_until=None,
        events=[],
        replicas=1,
        ready_replicas=1,
        desired=1,
        allowance=1,
    )


def test_budget_blocked_whole_plan() -> None:
    """A budget of $1/hour with $0.40 offers: two rentals, BudgetExceeded, an event."""
    p = plan(spec=spec(replicas=3, budget={"maxHourlySpend": 1.0}))
    blocked = "renting at $0.40/h would bring the pool to $1.20/h, above maxHourlySpend $1.00/h"
    assert p.rents == [Rent("Warm", message="keeping 3 warm")] * 2
    assert p.events == [("BudgetBlocked", blocked)]
    assert p.conditions[3] == SetCondition("BudgetExceeded", "True", "HourlyCap", blocked)
    assert conditions(p)["ScalingUp"] == ("True", "Renting")


def test_releases_and_drains_carry_messages() -> None:
    p = plan(
        spec=spec(replicas=1),
        instances=[inst("a", template="h0", jobs=1), inst("b", "Failed"), inst("c", jobs=1)],
    )
    assert p.drains == [Drain("a", "Drifted", "template h0 differs from the pool's h1")]
    assert p.releases == [Release("b", "Failed", "the instance failed")]
    assert p.rents == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"spec": spec(replicas=0)},
            {"Ready": ("True", "ReplicasReady"), "ScalingUp": ("False", "Steady")},
            id="zero-replicas-is-ready",
        ),
        pytest.param(
            {"spec": spec(replicas=2), "instances": [inst("a"), inst("b", "Starting")]},
            {"Ready": ("False", "ReplicasNotReady"), "ScalingUp": ("True", "InstancesStarting")},
            id="starting-is-scaling-up",
        ),
        pytest.param(
            {"spec": spec(replicas=2, paused=True), "instances": [inst("a")]},
            {
                "Ready": ("False", "Paused"),
                "ScalingUp": ("False", "Paused"),
                "Paused": ("True", "Paused"),
            },
            id="paused",
        ),
        pytest.param(
            {"spec": spec(replicas=0, paused=True)},
            {"Ready": ("True", "Paused"), "Paused": ("True", "Paused")},
            id="paused-zero-replicas",
        ),
        pytest.param(
            {
                "spec": spec(budget={"maxDailySpend": 5.0}),
                "instances": [inst("a")],
                "spend_today": 5.0,
            },
            {"BudgetExceeded": ("True", "DailyCap")},
            id="daily-spent-without-renting",
        ),
        pytest.param(
            {
                "spec": spec(budget={"maxHourlySpend": 0.5}),
                "instances": [inst("a"), inst("b", "Failed", deleting=True)],
            },
            {"BudgetExceeded": ("True", "HourlyCap")},
            id="hourly-above-cap-without-renting",
        ),
    ],
)
def test_plan_conditions(overrides: dict[str, Any], expected: dict[str, tuple[str, str]]) -> None:
    got = conditions(plan(**overrides))
    assert list(got) == [
        "Ready",
        "ScalingUp",
        "Degraded",
        "BudgetExceeded",
        "RentalsHealthy",
        "Paused",
    ]
    assert {k: got[k] for k in expected} == expected


# Circuit breaker.

F, OK = False, True


def history(*oks: bool, step: timedelta = 5 * MIN) -> list[RentalOutcome]:
    """Outcomes oldest first, the newest ``step`` ago, each ``step`` apart."""
    n = len(oks)
    return [outcome(f"i{k}", ok, step * (n - k)) for k, ok in enumerate(oks)]


@pytest.mark.parametrize(
    ("recent", "breaker_until", "state", "until", "trip"),
    [
        pytest.param([], None, "closed", None, "", id="no-history"),
        pytest.param(history(F), None, "closed", None, "", id="one-failure-too-few"),
        pytest.param(history(F, F), None, "open", NOW + 2 * MIN, "RecentFailures", id="two-of-two"),
        pytest.param(history(OK, F, OK, F), None, "open", NOW + MIN, "RecentFailures", id="half"),
        pytest.param(history(OK, OK, F), None, "closed", None, "", id="one-of-three"),
        pytest.param(history(F, F, OK), None, "closed", None, "", id="success-closes"),
        pytest.param(
            history(OK, OK, F, OK, F, OK, F),
            None,
            "open",
            NOW + MIN,
            "RecentFailures",
            id="window-is-the-last-six",
        ),
        pytest.param(
            [*history(F, F, OK, step=120 * MIN), outcome("x", F, 10 * MIN)],
            None,
            "closed",
            None,
            "",
            id="window-is-one-hour",
        ),
        pytest.param(
            history(OK, F, F, F, step=40 * MIN),
            None,
            "open",
            NOW + 4 * MIN,
            "ConsecutiveFailures",
            id="consecutive-beyond-the-hour",
        ),
        pytest.param(
            history(F, F), NOW + MIN, "open", NOW + MIN, "RecentFailures", id="stays-open"
        ),
        pytest.param(
            history(F, F), NOW - MIN, "half-open", NOW - MIN, "RecentFailures", id="half-opens"
        ),
        pytest.param(
            history(F, F, F),
            NOW - 6 * MIN,
            "open",
            NOW + 4 * MIN,
            "ConsecutiveFailures",
            id="trial-failed-reopens-longer",
        ),
        pytest.param(history(F, F, OK), NOW - MIN, "closed", None, "", id="trial-succeeded"),
        pytest.param(
            history(*[F] * 12, step=MIN),
            None,
            "open",
            NOW + 30 * MIN,
            "ConsecutiveFailures",
            id="backoff-capped",
        ),
    ],
)
def test_assess_breaker(
    recent: list[RentalOutcome],
    breaker_until: datetime | None,
    state: str,
    until: datetime | None,
    trip: str,
) -> None:
    b = breaker.assess_breaker(
        recent, breaker_until=breaker_until, max_consecutive_failures=3, now=NOW
    )
    assert (b.state, b.until, b.trip) == (state, until, trip)


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        pytest.param(0, MIN, id="zero"),
        pytest.param(1, MIN, id="one"),
        pytest.param(2, 2 * MIN, id="two"),
        pytest.param(5, 16 * MIN, id="five"),
        pytest.param(6, 30 * MIN, id="capped"),
        pytest.param(1000, 30 * MIN, id="huge"),
    ],
)
def test_breaker_backoff(failures: int, expected: timedelta) -> None:
    assert breaker.breaker_backoff(failures) == expected


def test_open_breaker_blocks_rentals_not_releases() -> None:
    recent = [
        outcome("x", F, 3 * MIN, "StatusMessageFailure"),
        outcome("y", F, 2 * MIN, "LoadingTimeout"),
        outcome("z", F, 1 * MIN, "LoadingTimeout"),
    ]
    p = plan(
        spec=spec(replicas=2),
        instances=[inst("a", "Failed")],
        recent_rentals=recent,
    )
    message = (
        "3 of 3 recent rentals failed, 3 in a row (LoadingTimeout×2, StatusMessageFailure×1);"
        " next attempt after 2024-05-01T12:04:00Z"
    )
    assert intents(p) == [release("a", "Failed")]
    assert p.breaker_until == NOW + 4 * MIN
    assert p.events == [("CircuitOpen", f"2 rental(s) held back: {message}")]
    assert p.conditions[2] == SetCondition("Degraded", "True", "CircuitOpen", message)
    assert p.conditions[4] == SetCondition(
        "RentalsHealthy", "False", "ConsecutiveFailures", message
    )


def test_max_consecutive_failures_per_pool() -> None:
    p = plan(
        spec=spec(failurePolicy={"maxConsecutiveFailures": 1}),
        recent_rentals=history(OK, OK, OK, F),
    )
    assert (intents(p), p.breaker_until) == ([], NOW + MIN)


def test_half_open_allows_one_trial() -> None:
    p = plan(spec=spec(replicas=3), recent_rentals=history(F, F), breaker_until=NOW - MIN)
    assert intents(p) == rent("Warm")
    assert p.breaker_until == NOW - MIN
    assert p.events == [("CircuitHalfOpen", "trying one rental")]
    assert conditions(p)["Degraded"] == ("True", "CircuitHalfOpen")


def test_half_open_waits_for_its_trial() -> None:
    trial = inst("t", "Provisioning", age=timedelta(seconds=30))
    p = plan(
        spec=spec(replicas=3),
        instances=[trial],
        recent_rentals=history(F, F),
        breaker_until=NOW - MIN,
    )
    assert intents(p) == []
    assert p.events == [("CircuitHalfOpen", "a trial rental is running")]


def test_breaker_closes_after_a_good_trial() -> None:
    p = plan(
        spec=spec(replicas=2),
        instances=[inst("t", reason="Warm")],
        recent_rentals=history(F, F, OK),
        breaker_until=NOW - MIN,
    )
    assert intents(p) == rent("Warm")
    assert p.breaker_until is None
    assert conditions(p)["RentalsHealthy"] == ("True", "Healthy")


def test_breaker_open_then_half_open_then_open_again() -> None:
    """The story of a pool whose rentals keep failing: it backs off instead of looping."""
    s = spec(replicas=1)
    recent = history(F, F)
    first = plan(spec=s, recent_rentals=recent)
    assert (intents(first), first.breaker_until) == ([], NOW + 2 * MIN)
    later = NOW + 3 * MIN
    trial = plan(spec=s, recent_rentals=recent, breaker_until=first.breaker_until, now=later)
    assert intents(trial) == rent("Warm")
    failed = breaker.record_outcome(
        recent,
        RentalOutcome(
            instance="trial", ok=False, reason="LoadingTimeout", time="2024-05-01T12:20:00Z"
        ),
        now=NOW + 20 * MIN,
    )
    again = plan(
        spec=s, recent_rentals=failed, breaker_until=first.breaker_until, now=NOW + 20 * MIN
    )
    assert (intents(again), again.breaker_until) == ([], NOW + 24 * MIN)


# record_outcome.


def test_record_outcome_appends_in_time_order() -> None:
    recent = [outcome("a", OK, 10 * MIN), outcome("b", F, 5 * MIN)]
    new = outcome("c", OK, 7 * MIN)
    assert breaker.record_outcome(recent, new, now=NOW) == [recent[0], new, recent[1]]


def test_record_outcome_replaces_the_same_instance() -> None:
    recent = [outcome("a", F, 10 * MIN), outcome("b", F, 5 * MIN)]
    again = outcome("a", F, 1 * MIN)
    assert breaker.record_outcome(recent, again, now=NOW) == [recent[1], again]


def test_record_outcome_keeps_the_newest() -> None:
    recent = history(*[OK] * 5, step=MIN)
    new = outcome("z", F, timedelta(0))
    assert breaker.record_outcome(recent, new, now=NOW, keep=3) == [recent[3], recent[4], new]


def test_record_outcome_forgets_after_a_day() -> None:
    recent = [outcome("old", F, 25 * 60 * MIN), outcome("day", F, 24 * 60 * MIN)]
    new = outcome("n", OK, timedelta(0))
    assert breaker.record_outcome(recent, new, now=NOW) == [recent[1], new]


def test_idle_since_is_the_latest_activity() -> None:
    i = inst("a", idle=30 * MIN)
    assert policy.idle_since(i) == NOW - 30 * MIN
    worked = InstanceView(
        name="b",
        phase="Ready",
        created_at=NOW - 60 * MIN,
        ready_at=NOW - 50 * MIN,
        last_job_at=NOW - 3 * MIN,
    )
    assert policy.idle_since(worked) == NOW - 3 * MIN


WARMUP = {"replicas": 1, "minArrivalsPerHour": 2, "window": "1h"}


def arrivals(*minutes_ago: int) -> list[datetime]:
    return [NOW - m * MIN for m in minutes_ago]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"spec": spec(replicas=0, maxReplicas=3, warmup=WARMUP),
             "recent_arrivals": arrivals(5, 40)},
            rent("Warm"),
            id="arrivals-warm-one-up",
        ),
        pytest.param(
            {"spec": spec(replicas=0, maxReplicas=3, warmup=WARMUP),
             "recent_arrivals": arrivals(5, 61, 90)},
            [],
            id="arrivals-outside-the-window-do-not-count",
        ),
        pytest.param(
            {"spec": spec(replicas=0, maxReplicas=3, warmup=WARMUP)},
            [],
            id="no-arrivals-passed-is-replicas",
        ),
        pytest.param(
            {"spec": spec(replicas=0, maxReplicas=3, warmup=WARMUP),
             "instances": [inst("a", idle=30 * MIN)], "recent_arrivals": arrivals(31, 45)},
            [],
            id="warm-instance-kept-while-jobs-arrive",
        ),
        pytest.param(
            {"spec": spec(replicas=0, maxReplicas=3, warmup=WARMUP),
             "instances": [inst("a", idle=30 * MIN)], "recent_arrivals": arrivals(31)},
            [release("a", "Idle")],
            id="warm-instance-idle-released-when-arrivals-slow",
        ),
        pytest.param(
            {"spec": spec(replicas=2, maxReplicas=3, warmup=WARMUP),
             "instances": [inst("a")], "recent_arrivals": []},
            rent("Warm"),
            id="replicas-stay-the-floor",
        ),
        pytest.param(
            {"spec": spec(replicas=0, maxReplicas=0, warmup=WARMUP),
             "recent_arrivals": arrivals(1, 2, 3)},
            [],
            id="warmup-capped-by-the-ceiling",
        ),
        pytest.param(
            {"spec": spec(replicas=0, maxReplicas=3, warmup=WARMUP), "queued_jobs": 2,
             "recent_arrivals": arrivals(1, 2)},
            rent("Warm") + rent("Demand"),
            id="warm-then-demand-labels",
        ),
    ],
)  # fmt: skip
def test_predictive_warmup(overrides: dict[str, Any], expected: list[Intent]) -> None:
    assert intents(plan(**overrides)) == expected


@pytest.mark.parametrize(
    ("minutes_ago", "window", "expected"),
    [
        pytest.param([], timedelta(hours=1), 0.0, id="none"),
        pytest.param([0, 59, 60, 61], timedelta(hours=1), 2.0, id="half-open-window"),
        pytest.param([1, 2, 3], timedelta(minutes=30), 6.0, id="per-hour"),
        pytest.param([1], timedelta(0), 0.0, id="empty-window"),
    ],
)
def test_arrival_rate(minutes_ago: list[int], window: timedelta, expected: float) -> None:
    assert warmup.arrival_rate(arrivals(*minutes_ago), window=window, now=NOW) == expected


# ---------------------------------------------------------------- work-aware scale-up


def booted(name: str, boot: timedelta, *, jobs: int = 0) -> InstanceView:
    """A Ready instance that took ``boot`` from rent to Ready."""
    created = NOW - 60 * MIN
    return dataclasses.replace(inst(name, jobs=jobs), ready_at=created + boot)


@pytest.mark.parametrize(
    ("instances", "expected"),
    [
        pytest.param([], policy.DEFAULT_BOOT, id="none-default"),
        pytest.param([inst("p", "Provisioning")], policy.DEFAULT_BOOT, id="none-ready-default"),
        pytest.param([booted("a", 2 * MIN), booted("b", 10 * MIN), booted("c", 4 * MIN)],
                     4 * MIN, id="median"),
        pytest.param([booted("a", 2 * MIN), inst("p", "Starting")], 2 * MIN,
                     id="only-those-that-got-there"),
    ],
)  # fmt: skip
def test_expected_boot(instances: list[InstanceView], expected: timedelta) -> None:
    assert policy.expected_boot(instances) == expected


@pytest.mark.parametrize(
    ("ready", "seconds", "concurrency", "expected"),
    [
        pytest.param(0, 0.0, 1, 0, id="cold-no-work"),
        pytest.param(0, 20.0, 1, 1, id="cold-any-work-one"),
        pytest.param(0, 300.0, 1, 1, id="cold-one-boot-of-work-one"),
        pytest.param(0, 301.0, 1, 2, id="cold-more-than-a-boot-two"),
        pytest.param(1, 20.0, 1, 1, id="ready-absorbs-short-work"),
        pytest.param(1, 300.0, 1, 1, id="ready-absorbs-a-boot-of-work"),
        pytest.param(1, 800.0, 1, 3, id="spike-beyond-a-boot"),
        pytest.param(2, 800.0, 1, 3, id="two-ready-spike"),
        pytest.param(1, 900.0, 2, 2, id="slots-absorb-more"),
        pytest.param(1, -5.0, 1, 1, id="negative-work-is-none"),
    ],
)
def test_worth_having(ready: int, seconds: float, concurrency: int, expected: int) -> None:
    got = policy.worth_having(ready, seconds, concurrency=concurrency, boot=5 * MIN)
    assert got == expected


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"spec": spec(replicas=1, maxReplicas=4), "instances": [inst("a", jobs=1)],
             "queued_jobs": 1},
            rent("Demand"),
            id="unknown-work-one-per-job",
        ),
        pytest.param(
            {"spec": spec(replicas=1, maxReplicas=4), "instances": [inst("a", jobs=1)],
             "queued_jobs": 1, "queued_seconds": 20.0},
            [],
            id="short-job-waits-for-the-busy-instance",
        ),
        pytest.param(
            {"spec": spec(replicas=1, maxReplicas=10), "instances": [inst("a", jobs=1)],
             "queued_jobs": 50, "queued_seconds": 800.0},
            rent("Demand", 2),
            id="spike-rents-what-drains-it",
        ),
        pytest.param(
            {"spec": spec(replicas=1, maxReplicas=2), "instances": [inst("a", jobs=1)],
             "queued_jobs": 50, "queued_seconds": 800.0},
            rent("Demand"),
            id="spike-still-capped-by-the-ceiling",
        ),
        pytest.param(
            {"spec": spec(replicas=0, maxReplicas=4), "queued_jobs": 3,
             "queued_seconds": 30.0},
            rent("Demand"),
            id="cold-small-queue-one-rental",
        ),
        pytest.param(
            {"spec": spec(replicas=0, maxReplicas=4, hedge=1), "queued_jobs": 3,
             "queued_seconds": 30.0},
            rent("Demand") + rent("Hedge"),
            id="cold-small-queue-hedged",
        ),
        pytest.param(
            {"spec": spec(replicas=1, maxReplicas=4),
             "instances": [booted("a", 1 * MIN, jobs=1)], "queued_jobs": 3,
             "queued_seconds": 200.0},
            rent("Demand", 3),
            id="fast-boots-make-rentals-worth-it",
        ),
        pytest.param(
            {"spec": spec(replicas=1, maxReplicas=4),
             "instances": [inst("a", jobs=1), inst("b", "Provisioning", age=2 * MIN)],
             "queued_jobs": 1, "queued_seconds": 20.0},
            [release("b", "Surplus")],
            id="booting-instance-no-longer-worth-it-released",
        ),
        pytest.param(
            {"spec": spec(replicas=3, maxReplicas=4), "instances": [inst("a")],
             "queued_seconds": 0.0},
            rent("Warm", 2),
            id="the-floor-holds-without-work",
        ),
    ],
)  # fmt: skip
def test_work_aware_scale_up(overrides: dict[str, Any], expected: list[Intent]) -> None:
    assert intents(plan(**overrides)) == expected
