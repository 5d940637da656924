"""The lifecycle of one GpuInstance: next phase, and whether to terminate it.

Pure: the handler passes what Vast.ai reports about the rental (:class:`RentalView`),
the last ComfyUI probe (:class:`ProbeView`), the instance's timestamps, the pool's
policies and ``now``; :func:`decide_instance` returns an :class:`InstanceDecision`.

Termination reasons (stable words, also used in events and metrics):
``StatusMessageFailure``, ``LoadingTimeout``, ``ReadinessTimeout``,
``RentalVanished``, ``MachineOffline``, ``ComfyUnreachable``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import FailurePolicySpec, ReadinessSpec

ProbeStage = Literal["answering", "models", "canary"]

#: Probe stages in order: ComfyUI answers, the pool's models are present, the canary ran.
PROBE_STAGES: tuple[ProbeStage, ...] = ("answering", "models", "canary")


@dataclass(frozen=True)
class RentalView:
    """What Vast.ai says about the rental (from the shared instance listing)."""

    present: bool
    """The contract is in the listing."""
    actual_status: str | None = None
    intended_status: str | None = None
    cur_state: str | None = None
    status_msg: str | None = None
    has_port: bool = False
    """The ComfyUI port mapping exists."""
    public_ip: str | None = None


@dataclass(frozen=True)
class ProbeView:
    """The last ComfyUI probe.

    ``ok`` with ``stage`` = the furthest stage passed; not ``ok``: ``stage`` is the
    stage that failed.
    """

    ok: bool
    stage: ProbeStage
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class InstanceDecision:
    """What to do with an instance now."""

    phase: Phase
    terminate: bool
    reason: str
    message: str
    start_probe: bool
    """Probe ComfyUI (readiness while Starting, liveness while Ready/Draining)."""


def matches_failure_pattern(status_msg: str | None, patterns: Sequence[str]) -> str | None:
    """The first pattern that is a case-insensitive substring of ``status_msg``, or None."""
    raise NotImplementedError


def is_stuck_loading(
    rental: RentalView, *, rented_at: datetime | None, now: datetime, policy: FailurePolicySpec
) -> bool:
    """Whether the rental is still not running ``loadingTimeout`` after it was rented."""
    raise NotImplementedError


def decide_instance(
    *,
    phase: Phase,
    rental: RentalView | None,
    probe: ProbeView | None,
    probe_failures: int,
    rented_at: datetime | None,
    running_at: datetime | None,
    ready_at: datetime | None,
    now: datetime,
    policy: FailurePolicySpec,
    readiness: ReadinessSpec,
    status_since: datetime | None = None,
    offline_grace: timedelta = timedelta(minutes=2),
    vanish_grace: timedelta = timedelta(minutes=1),
) -> InstanceDecision:
    """Next phase of an instance, and whether to terminate it (see the module docstring).

    ``rental`` is None while no contract exists yet (Pending/Renting). ``status_since``
    is when the current ``actual_status`` was first seen (for the offline grace).
    """
    raise NotImplementedError
