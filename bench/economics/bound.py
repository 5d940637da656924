"""A lower bound on what any online policy spends to keep p95 wait within a limit.

An online policy decides at time ``t`` from what happened before ``t``; the arrivals
of a Poisson process after ``t`` are independent of that, so a job arriving at ``t``
finds the pool as it is at a random moment (PASTA). Such a job waits at most ``w``
only if (a) some instance is billed at ``t`` (Ready, or booting and Ready by
``t + w``), or (b) an instance rented after it arrived boots within ``w``, which
happens with probability at most ``p_fast = P(boot <= w)`` whatever the policy does.

Let ``u(t)`` be the probability that an instance is billed at ``t`` and ``λ(t)``
the arrival rate, ``Λ = ∫λ``. The share of jobs waiting at most ``w`` is at most
``c + p_fast (1 - c)`` with ``c = ∫λu / Λ``, so a p-th percentile within ``w``
needs ``c >= (p - p_fast) / (1 - p_fast)``. Billed GPU-hours are at least ``∫u``,
and the least ``∫u`` with ``0 <= u <= 1`` and ``∫λu >= cΛ`` keeps ``u = 1`` on the
busiest hours first (a fractional knapsack). Dollars are at least that many hours
at the cheapest matching offer's price. The bound ignores everything else a policy
pays for (jobs' own run time beyond one machine, failed rentals, idle tails), so no
policy — however clever, as long as it does not know the future — spends less in
expectation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

from supply import SupplyModel


def p_fast(supply: SupplyModel, wait_s: float) -> float:
    """Probability that a rental is Ready within ``wait_s`` of the rent call."""
    if supply.deterministic:
        return 1.0 if supply.boot_median_s <= wait_s else 0.0
    return NormalDist().cdf(math.log(wait_s / supply.boot_median_s) / supply.sigma)


def covered_share(supply: SupplyModel, *, wait_s: float, quantile: float) -> float:
    """Least share of arrivals that must find an instance billed (see the module)."""
    fast = p_fast(supply, wait_s)
    return max((quantile - fast) / (1.0 - fast), 0.0) if fast < 1.0 else 0.0


def billed_hours_bound(
    rate: Callable[[float], float],
    supply: SupplyModel,
    *,
    wait_s: float = 60.0,
    quantile: float = 0.95,
    hours: float = 24.0,
    step_s: float = 6.0,
) -> float:
    """Least expected GPU-hours billed for the ``quantile`` of wait within ``wait_s``.

    ``rate`` is jobs/hour at an hour of the day (:data:`demand.RATES`).
    """
    steps = int(hours * 3600.0 / step_s)
    dt = step_s / 3600.0
    rates = sorted((rate((n + 0.5) * dt) for n in range(steps)), reverse=True)
    total = sum(rates) * dt
    need = covered_share(supply, wait_s=wait_s, quantile=quantile) * total
    covered = billed = 0.0
    for r in rates:
        if covered >= need or r <= 0.0:
            break
        take = min(dt, (need - covered) / r)
        covered += r * take
        billed += take
    return billed


def p_resume(supply: SupplyModel, wait_s: float) -> float:
    """Probability that one start of a stopped instance is Ready within ``wait_s``."""
    free = 1.0 - supply.gpu_taken
    if supply.deterministic:
        return free if supply.resume_median_s <= wait_s else 0.0
    return free * NormalDist().cdf(math.log(wait_s / supply.resume_median_s) / supply.resume_sigma)


def cold_bound(
    rate: Callable[[float], float],
    supply: SupplyModel,
    *,
    price_per_hour: float,
    storage_per_hour: float,
    wait_s: float = 60.0,
    quantile: float = 0.95,
    hours: float = 24.0,
    max_cold: int = 8,
) -> tuple[float, int, float]:
    """The bound for a pool that may also hold ``k`` stopped instances.

    A job that finds no instance billed waits at most ``wait_s`` only if one of the
    ``k`` stopped instances started at its arrival (all of them at once: the best a
    policy can do) or a fresh rental is Ready in time:
    ``p_k = 1 - (1 - p_resume)^k (1 - p_fast)``. The share of arrivals that must find
    an instance billed falls to ``(q - p_k) / (1 - p_k)``, and the ``k`` disks are
    billed all the time at the cheapest storage. Returns the least expected dollars
    over ``k = 0..max_cold``, that ``k`` and its billed GPU-hours.
    """
    best: tuple[float, int, float] | None = None
    for k in range(max_cold + 1):
        miss = (1.0 - p_resume(supply, wait_s)) ** k * (1.0 - p_fast(supply, wait_s))
        fast = 1.0 - miss
        need = max((quantile - fast) / (1.0 - fast), 0.0) if fast < 1.0 else 0.0
        billed = _covering_hours(rate, need, hours=hours)
        dollars = billed * price_per_hour + k * storage_per_hour * hours
        if best is None or dollars < best[0] - 1e-12:
            best = (dollars, k, billed)
    assert best is not None
    return best


def _covering_hours(
    rate: Callable[[float], float], share: float, *, hours: float, step_s: float = 6.0
) -> float:
    """Least hours with ``u = 1`` holding ``share`` of the arrivals (busiest first)."""
    steps = int(hours * 3600.0 / step_s)
    dt = step_s / 3600.0
    rates = sorted((rate((n + 0.5) * dt) for n in range(steps)), reverse=True)
    need = share * sum(rates) * dt
    covered = billed = 0.0
    for r in rates:
        if covered >= need or r <= 0.0:
            break
        take = min(dt, (need - covered) / r)
        covered += r * take
        billed += take
    return billed
