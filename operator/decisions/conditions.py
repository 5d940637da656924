"""A pool's conditions, from what the policy decided. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from warmpool.crds.common import ConditionStatus
from warmpool.crds.gpupool import GpuPoolSpec
from warmpool.operator.decisions import budget
from warmpool.operator.decisions.breaker import Breaker, message

#: Pool status fields that move with the clock alone.
CLOCK_FIELDS = frozenset({"spendToday"})
#: Conditions whose message alone moves with the clock ("$1.64/h, $0.01 today").
CLOCK_MESSAGES = frozenset({"BudgetExceeded"})

StatusChange = Literal["none", "clock", "real"]


def status_change(current: Mapping[str, object], status: Mapping[str, object]) -> StatusChange:
    """How the pool ``status`` to write differs from the ``current`` one: not at all, only in
    what moves with the clock (today's spend, in a field and in the budget condition's
    message), or in something that happened. A field written as ``None`` is a removal."""
    change: StatusChange = "none"
    for key, value in status.items():
        was = current.get(key)
        if was == value:
            continue
        if key in CLOCK_FIELDS or (
            key == "conditions" and _without_clock(was) == _without_clock(value)
        ):
            change = "clock"
        else:
            return "real"
    return change


def _without_clock(conditions: object) -> object:
    if not isinstance(conditions, list):
        return conditions
    return [
        {k: v for k, v in c.items() if k != "message"}
        if isinstance(c, dict) and c.get("type") in CLOCK_MESSAGES
        else c
        for c in conditions
    ]


@dataclass(frozen=True)
class SetCondition:
    """A pool condition to write (the handler keeps ``lastTransitionTime``)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str


def pool_conditions(
    spec: GpuPoolSpec,
    *,
    ready: int,
    renting: int,
    breaker: Breaker,
    coming: int,
    budget_verdict: budget.BudgetVerdict | None,
    hourly: float,
    spend_today: float,
) -> list[SetCondition]:
    """The pool's conditions: Ready, ScalingUp, Degraded, BudgetExceeded, RentalsHealthy,
    Paused (``renting``: rentals planned now; ``coming``: instances starting)."""
    replicas = spec.replicas
    counts = f"{ready}/{replicas} ready"
    if spec.paused:
        ready_cond = SetCondition("Ready", "True" if replicas == 0 else "False", "Paused", counts)
        scaling = SetCondition("ScalingUp", "False", "Paused", "the pool is paused")
    else:
        ok = ready >= replicas or replicas == 0
        ready_cond = SetCondition(
            "Ready",
            "True" if ok else "False",
            "ReplicasReady" if ok else "ReplicasNotReady",
            counts,
        )
        if renting:
            scaling = SetCondition("ScalingUp", "True", "Renting", f"renting {renting}")
        elif coming:
            scaling = SetCondition("ScalingUp", "True", "InstancesStarting", f"{coming} starting")
        else:
            scaling = SetCondition("ScalingUp", "False", "Steady", counts)
    if breaker.state == "closed":
        degraded = SetCondition("Degraded", "False", "Healthy", "rentals succeed")
        healthy = SetCondition(
            "RentalsHealthy",
            "True",
            "Healthy",
            f"{breaker.failed} of {breaker.window} recent rentals failed",
        )
    else:
        reason = "CircuitOpen" if breaker.state == "open" else "CircuitHalfOpen"
        degraded = SetCondition("Degraded", "True", reason, message(breaker))
        healthy = SetCondition("RentalsHealthy", "False", breaker.trip, message(breaker))
    caps = spec.budget
    if budget_verdict is not None and not budget_verdict.allowed:
        exceeded = SetCondition(
            "BudgetExceeded", "True", budget_verdict.reason, budget_verdict.message
        )
    elif caps.max_daily_spend is not None and spend_today >= caps.max_daily_spend:
        exceeded = SetCondition(
            "BudgetExceeded",
            "True",
            budget.DAILY_CAP,
            f"spent ${spend_today:.2f} today, maxDailySpend ${caps.max_daily_spend:.2f}",
        )
    elif caps.max_hourly_spend is not None and hourly > caps.max_hourly_spend + 1e-9:
        exceeded = SetCondition(
            "BudgetExceeded",
            "True",
            budget.HOURLY_CAP,
            f"${hourly:.2f}/h above maxHourlySpend ${caps.max_hourly_spend:.2f}/h",
        )
    else:
        exceeded = SetCondition(
            "BudgetExceeded",
            "False",
            budget.WITHIN_BUDGET,
            f"${hourly:.2f}/h, ${spend_today:.2f} today",
        )
    paused = SetCondition(
        "Paused",
        "True" if spec.paused else "False",
        "Paused" if spec.paused else "Running",
        "the pool is paused" if spec.paused else "the pool is running",
    )
    return [ready_cond, scaling, degraded, exceeded, healthy, paused]
