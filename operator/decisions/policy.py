"""The pool policy: how many instances to rent, which to release or drain, conditions.

Pure: :func:`plan_pool` takes the pool spec, its instances (:class:`InstanceView`),
queued jobs, recent rental outcomes, the circuit-breaker time, spend today and
``now``, and returns a :class:`PoolPlan` of intents. The handler applies them:
one GpuInstance object per :class:`Rent`, delete the object per :class:`Release`,
set phase Draining per :class:`Drain`, write the conditions and ``breaker_until``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from warmpool.crds.common import ConditionStatus
from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import GpuPoolSpec, RentalOutcome

#: Why an instance was rented (``GpuInstance.spec.reason``).
WARM = "Warm"
DEMAND = "Demand"
HEDGE = "Hedge"
REPLACEMENT = "Replacement"


@dataclass(frozen=True)
class InstanceView:
    """One GpuInstance of the pool, as the policy needs it.

    Pass every GpuInstance object of the pool, in any phase, including those being
    deleted: they still cost money until their rental is destroyed.
    ``price_per_hour`` of a Pending instance is the price of the offer it chose.
    """

    name: str
    phase: Phase
    created_at: datetime
    rented_at: datetime | None = None
    ready_at: datetime | None = None
    last_job_at: datetime | None = None
    jobs: int = 0
    template_hash: str = ""
    price_per_hour: float = 0.0
    machine_id: int | None = None
    reason: str = WARM
    deleting: bool = False


@dataclass(frozen=True)
class Rent:
    """Create one GpuInstance (one rental). ``count`` is always 1: one Rent per rental."""

    reason: str
    count: int = 1
    message: str = ""


@dataclass(frozen=True)
class Release:
    """Delete the GpuInstance ``name`` (its finalizer destroys the rental)."""

    name: str
    reason: str
    message: str = ""


@dataclass(frozen=True)
class Drain:
    """Stop placing jobs on ``name`` (phase Draining); it is released once idle."""

    name: str
    reason: str
    message: str = ""


@dataclass(frozen=True)
class SetCondition:
    """A pool condition to write (the handler keeps ``lastTransitionTime``)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str


@dataclass
class PoolPlan:
    """Everything :func:`plan_pool` decided for one reconcile."""

    rents: list[Rent] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    drains: list[Drain] = field(default_factory=list)
    conditions: list[SetCondition] = field(default_factory=list)
    breaker_until: datetime | None = None
    """Write to ``status.breakerUntil`` (None clears it)."""
    events: list[tuple[str, str]] = field(default_factory=list)
    """(reason, message) of decisions that are not intents (budget blocks, breaker)."""
    replicas: int = 0
    """Instances that exist and are not being deleted (``status.replicas``)."""
    ready_replicas: int = 0
    """Instances that are Ready (``status.readyReplicas``)."""


def record_outcome(
    recent: Sequence[RentalOutcome], outcome: RentalOutcome, *, now: datetime, keep: int = 20
) -> list[RentalOutcome]:
    """The recent outcomes plus ``outcome`` (replacing an earlier one of the same instance),
    oldest first, at most ``keep`` and none older than a day."""
    raise NotImplementedError


def plan_pool(
    *,
    spec: GpuPoolSpec,
    instances: Sequence[InstanceView],
    queued_jobs: int,
    template_hash: str,
    recent_rentals: Sequence[RentalOutcome],
    breaker_until: datetime | None,
    spend_today: float,
    now: datetime,
    rental_price: float | None = None,
) -> PoolPlan:
    """What to rent, release and drain now, the conditions, and the breaker time.

    ``rental_price`` is the expected $/hour of one new rental (the best matching
    offer); default ``spec.offer.maxPricePerHour``, or 0 when neither is known.
    """
    raise NotImplementedError
