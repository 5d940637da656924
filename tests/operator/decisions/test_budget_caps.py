"""T1: what a reached daily cap means (``onExceeded``) and the operator-wide cap.

Before ``onExceeded`` a pool at its daily cap only stopped renting: its running machines
kept billing until someone noticed. ``Release`` (the default) releases idle instances at
once and drains busy ones; ``Block`` keeps the old behaviour. The operator-wide cap is the
same rule over every pool, so that a namespace editor's own ``maxDailySpend`` cannot lift it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import BudgetSpec, GpuPoolSpec, OnExceeded
from warmpool.operator.decisions import budget, policy
from warmpool.operator.decisions.budget import BudgetVerdict, CapCut, CapPlan, FleetSpend

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
HASH = "h"


@dataclass(frozen=True)
class Held:
    name: str
    phase: Phase = "Ready"
    jobs: int = 0
    deleting: bool = False


def caps(daily: float | None = 10.0, on: OnExceeded = "Release") -> BudgetSpec:
    return BudgetSpec(max_daily_spend=daily, on_exceeded=on)


def fleet(
    spent: float, cap: float = 100.0, on: OnExceeded = "Release", hourly: float = 0.0
) -> FleetSpend:
    return FleetSpend(daily_cap=cap, spend_today=spent, current_hourly=hourly, on_exceeded=on)


POOL_MSG = "spent $10.00 today, maxDailySpend $10.00"
FLEET_MSG = "every pool together spent $100.00 today, the operator's daily cap is $100.00"


def release(name: str, msg: str = POOL_MSG) -> CapCut:
    return CapCut(name, drain=False, message=f"released at the cap: {msg}")


def drain(name: str, msg: str = POOL_MSG) -> CapCut:
    return CapCut(name, drain=True, message=f"released after its job: {msg}")


MIXED = [
    Held("a-idle"),
    Held("b-busy", jobs=2),
    Held("c-booting", phase="Provisioning"),
    Held("d-draining-busy", phase="Draining", jobs=1),
    Held("e-draining-idle", phase="Draining"),
    Held("f-terminating", phase="Terminating"),
    Held("g-deleting", deleting=True),
    Held("h-failed", phase="Failed"),
]


@pytest.mark.parametrize(
    ("instances", "spec", "spent", "fleet_", "expected"),
    [
        pytest.param(MIXED, caps(), 9.99, None, None, id="below-the-cap"),
        pytest.param(MIXED, caps(None), 1e6, None, None, id="no-daily-cap"),
        pytest.param(
            MIXED,
            caps(),
            10.0,
            None,
            CapPlan(
                BudgetVerdict(False, budget.DAILY_CAP, POOL_MSG),
                [
                    release("a-idle"),
                    drain("b-busy"),
                    release("c-booting"),
                    release("e-draining-idle"),
                    release("h-failed"),
                ],
            ),
            id="release-idle-now-busy-after-its-job",
        ),
        pytest.param(
            MIXED,
            caps(on="Block"),
            10.0,
            None,
            CapPlan(BudgetVerdict(False, budget.DAILY_CAP, POOL_MSG), []),
            id="block-keeps-them-running",
        ),
        pytest.param(
            [Held("a")],
            caps(),
            12.5,
            None,
            CapPlan(
                BudgetVerdict(False, budget.DAILY_CAP, "spent $12.50 today, maxDailySpend $10.00"),
                [release("a", "spent $12.50 today, maxDailySpend $10.00")],
            ),
            id="past-the-cap",
        ),
        pytest.param(
            [Held("a"), Held("b", jobs=1)],
            caps(None),
            3.0,
            fleet(100.0),
            CapPlan(
                BudgetVerdict(False, budget.OPERATOR_DAILY_CAP, FLEET_MSG),
                [release("a", FLEET_MSG), drain("b", FLEET_MSG)],
            ),
            id="operator-cap-releases-a-pool-without-budget",
        ),
        pytest.param(
            [Held("a")],
            caps(1000.0, on="Block"),
            3.0,
            fleet(100.0),
            CapPlan(
                BudgetVerdict(False, budget.OPERATOR_DAILY_CAP, FLEET_MSG),
                [release("a", FLEET_MSG)],
            ),
            id="the-pool-cannot-lift-the-operator-cap-nor-block-its-release",
        ),
        pytest.param(
            [Held("a")],
            caps(None),
            3.0,
            fleet(100.0, on="Block"),
            CapPlan(BudgetVerdict(False, budget.OPERATOR_DAILY_CAP, FLEET_MSG), []),
            id="operator-cap-block",
        ),
        pytest.param(
            [Held("a")],
            caps(on="Block"),
            10.0,
            fleet(100.0),
            CapPlan(BudgetVerdict(False, budget.DAILY_CAP, POOL_MSG), []),
            id="the-pool-cap-is-named-first",
        ),
        pytest.param([Held("a")], caps(None), 3.0, fleet(99.0), None, id="below-operator-cap"),
        pytest.param(
            [],
            caps(),
            10.0,
            None,
            CapPlan(BudgetVerdict(False, budget.DAILY_CAP, POOL_MSG), []),
            id="nothing-to-release",
        ),
    ],
)
def test_plan_cap(
    instances: list[Held],
    spec: BudgetSpec,
    spent: float,
    fleet_: FleetSpend | None,
    expected: CapPlan | None,
) -> None:
    assert budget.plan_cap(instances, spec, spend_today=spent, fleet=fleet_) == expected


def test_release_is_the_default() -> None:
    assert BudgetSpec().on_exceeded == "Release"
    assert GpuPoolSpec.model_validate({"budget": {"maxDailySpend": 5}}).budget.on_exceeded == (
        "Release"
    )


def test_on_exceeded_refuses_other_words() -> None:
    with pytest.raises(ValueError, match="onExceeded"):
        GpuPoolSpec.model_validate({"budget": {"onExceeded": "Ignore"}})


@pytest.mark.parametrize(
    ("price", "fleet_", "allowed", "reason"),
    [
        pytest.param(1.0, None, True, budget.WITHIN_BUDGET, id="no-operator-cap"),
        pytest.param(1.0, fleet(50.0, hourly=10.0), True, budget.WITHIN_BUDGET, id="fits"),
        pytest.param(
            1.0, fleet(50.0, hourly=49.0), True, budget.WITHIN_BUDGET, id="exactly-the-cap"
        ),
        pytest.param(
            1.0, fleet(50.0, hourly=49.5), False, budget.OPERATOR_DAILY_CAP, id="an-hour-crosses"
        ),
        pytest.param(0.0, fleet(100.0), False, budget.OPERATOR_DAILY_CAP, id="at-the-cap"),
        pytest.param(0.1, fleet(0.0, cap=0.0), False, budget.OPERATOR_DAILY_CAP, id="cap-zero"),
    ],
)
def test_may_rent_under_the_operator_cap(
    price: float, fleet_: FleetSpend | None, allowed: bool, reason: str
) -> None:
    verdict = budget.may_rent(
        price,
        BudgetSpec(),
        current_hourly=0.0,
        spend_today=0.0,
        hours_left_today=12.0,
        fleet=fleet_,
    )
    assert (verdict.allowed, verdict.reason) == (allowed, reason)


def test_the_pool_caps_are_checked_before_the_operator_cap() -> None:
    verdict = budget.may_rent(
        2.0,
        BudgetSpec(max_hourly_spend=1.0),
        current_hourly=0.0,
        spend_today=0.0,
        hours_left_today=12.0,
        fleet=fleet(100.0),
    )
    assert verdict.reason == budget.HOURLY_CAP


def test_the_pools_own_rentals_count_against_the_operator_cap_in_one_pass() -> None:
    """Five rentals wanted at $1/h with $2.50 of room in the operator's cap: two, not five
    (each rental planned in the pass raises the fleet's $/hour for the next)."""
    spec = GpuPoolSpec(replicas=5, hedge=0)
    plan = policy.plan_pool(
        spec=spec,
        instances=[],
        queued_jobs=0,
        template_hash=HASH,
        recent_rentals=[],
        breaker_until=None,
        spend_today=0.0,
        now=NOW,
        rental_price=1.0,
        fleet=fleet(97.5, cap=100.0),
    )
    assert len(plan.rents) == 2
    assert ("BudgetBlocked", plan.events[-1][1]) == plan.events[-1]
    exceeded = next(c for c in plan.conditions if c.type == "BudgetExceeded")
    assert (exceeded.status, exceeded.reason) == ("True", budget.OPERATOR_DAILY_CAP)


def test_nothing_rents_until_the_day_turns() -> None:
    """Released at the cap, the pool's closed spend still holds the day: no rental; at
    midnight UTC the closed amount belongs to yesterday and renting resumes."""
    from warmpool.crds.gpupool import SpendStatus

    closed = SpendStatus(day="2024-05-01", closed=10.0)
    spec = GpuPoolSpec(replicas=1, hedge=0, budget=caps(10.0))
    for when, rents in ((NOW, 0), (NOW.replace(hour=23, minute=59), 0),
                        (NOW + timedelta(hours=12), 1)):  # fmt: skip
        plan = policy.plan_pool(
            spec=spec,
            instances=[],
            queued_jobs=0,
            template_hash=HASH,
            recent_rentals=[],
            breaker_until=None,
            spend_today=budget.spend_today(closed, [], now=when),
            now=when,
            rental_price=0.1,
        )
        assert len(plan.rents) == rents, when
