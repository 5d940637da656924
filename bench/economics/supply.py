"""Supply side of the economics simulation: offers, boot times, failures, machines lost.

Every rental draws, from the run's seeded random stream, how long it takes from the
rent call to Ready (a lognormal with the configured median and 95th percentile), the
share of that spent loading (before Vast.ai reports ``running``), whether it fails
while loading (a status message the failure policy matches, or stuck in loading
until ``loadingTimeout``), and, once running, when its machine goes offline
(exponential with the configured rate per hour). Policies are compared with
common random numbers: the k-th rental of every policy gets the same draws.

The cold tier (``spec.cold``): a start of a stopped instance draws its start → Ready
time (lognormal, median 40 s, p95 120 s: the image and models are on its disk) and
whether its GPU was taken meanwhile (15 %: the start never progresses). Every offer
has a ``storage_cost`` ($/GB/month, 0.05-0.5 as the contract observes, §11); a stopped
instance bills that × the template's disk / 720 per hour, nothing else.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from warmpool.operator.decisions.offers import OfferView

#: z of the 95th percentile of the standard normal distribution.
Z95 = 1.6448536269514722


@dataclass(frozen=True)
class SupplyModel:
    """How rentals behave. Defaults follow the issue: median 4 min, p95 12 min."""

    boot_median_s: float = 240.0
    boot_p95_s: float = 720.0
    loading_share: float = 0.8
    """Share of the boot spent in created/loading; the rest is ComfyUI + models + canary."""
    fail_loading: float = 0.05
    """Probability that a rental fails during loading."""
    stuck_share: float = 0.3
    """Of the failures, the share stuck in loading (caught by ``loadingTimeout``);
    the others show a status message such as "no space left on device"."""
    offline_per_hour: float = 0.02
    """Probability per hour that a running machine goes offline."""
    deterministic: bool = False
    """Every boot takes exactly the median; nothing fails (for small tests)."""
    resume_median_s: float = 40.0
    """Start of a stopped instance → Ready (disk kept: no pull, no model download)."""
    resume_p95_s: float = 120.0
    gpu_taken: float = 0.15
    """Share of starts whose GPU was rented by someone else meanwhile (never progress)."""

    @property
    def sigma(self) -> float:
        return math.log(self.boot_p95_s / self.boot_median_s) / Z95

    @property
    def resume_sigma(self) -> float:
        return math.log(self.resume_p95_s / self.resume_median_s) / Z95


@dataclass(frozen=True)
class ResumeDraw:
    """What will happen to one start of a stopped instance."""

    ready_s: float
    """Start → Ready when the GPU is free."""
    taken: bool
    """The GPU was taken: ``intended=running``, ``cur_state=stopped`` for ever."""


def draw_resume(model: SupplyModel, rng: random.Random) -> ResumeDraw:
    """One start's fate. Always consumes two random values (common random numbers)."""
    u_time, u_taken = rng.random(), rng.random()
    if model.deterministic:
        return ResumeDraw(model.resume_median_s, False)
    ready = model.resume_median_s * math.exp(model.resume_sigma * _normal_quantile(u_time))
    return ResumeDraw(ready, u_taken < model.gpu_taken)


@dataclass(frozen=True)
class RentalDraw:
    """What will happen to one rental, in seconds after the rent call."""

    boot_s: float
    """Rent → Ready, when nothing fails."""
    running_s: float
    """Rent → Vast.ai reports running with the port mapped."""
    fail_s: float | None
    """Rent → status message failure (None: none)."""
    stuck: bool
    """Never leaves loading."""
    offline_after_running_s: float
    """Running → machine offline (may be past the end of the day)."""


def draw_rental(model: SupplyModel, rng: random.Random) -> RentalDraw:
    """One rental's fate. Always consumes the same number of random values."""
    u_boot, u_fail, u_kind, u_when, u_offline = (rng.random() for _ in range(5))
    if model.deterministic:
        boot = model.boot_median_s
        return RentalDraw(boot, boot * model.loading_share, None, False, math.inf)
    z = _normal_quantile(u_boot)
    boot = model.boot_median_s * math.exp(model.sigma * z)
    running = boot * model.loading_share
    failing = u_fail < model.fail_loading
    stuck = failing and u_kind < model.stuck_share
    fail_s = running * u_when if failing and not stuck else None
    rate = model.offline_per_hour / 3600.0
    offline = -math.log(1.0 - u_offline) / rate if rate > 0 else math.inf
    return RentalDraw(boot, running, fail_s, stuck, offline)


def _normal_quantile(u: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(min(max(u, 1e-12), 1 - 1e-12))


def catalogue(seed: int = 7, count: int = 240) -> list[OfferView]:
    """A market of RTX 4090 offers, $0.35-0.75/hour, mostly reliable, verified."""
    rng = random.Random(seed)
    storage = random.Random(seed * 7919 + 1)  # its own stream: the prices stay as they were
    offers = []
    for n in range(count):
        price = round(0.35 + 0.40 * rng.random() ** 2, 3)
        offers.append(
            OfferView(
                id=10_000 + n,
                machine_id=20_000 + n,
                host_id=30_000 + n // 3,
                gpu_name="RTX 4090",
                num_gpus=1,
                gpu_ram_gb=24.0,
                price_per_hour=price,
                reliability=round(0.985 + 0.015 * rng.random(), 4),
                inet_down_mbps=round(200 + 1800 * rng.random()),
                direct_ports=rng.choice([4, 8, 16]),
                verified=True,
                country=rng.choice(["US", "DE", "NL", "SE", "CA"]),
                storage_cost=round(0.05 + 0.45 * storage.random() ** 2, 3),
            )
        )
    return offers
