"""The lifecycle of one GpuInstance: next phase, and whether to terminate it.

Pure: the handler passes what Vast.ai reports about the rental (:class:`RentalView`),
the last ComfyUI probe (:class:`ProbeView`), the instance's timestamps, the pool's
policies and ``now``; :func:`decide_instance` returns an :class:`InstanceDecision`.

The handler stamps ``running_at`` when the decision first moves the instance to
Starting, and ``ready_at`` when it moves to Ready; it records a host failure
(:func:`warmpool.operator.decisions.offers.record_failure`) and a rental outcome
(:func:`warmpool.operator.decisions.breaker.record_outcome`) when ``terminate`` is set.

Termination reasons (stable words, also used in events and metrics):
``StatusMessageFailure``, ``LoadingTimeout``, ``ReadinessTimeout``,
``RentalVanished``, ``MachineOffline``, ``ComfyUnreachable``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from warmpool.crds.common import parse_duration
from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import FailurePolicySpec, ReadinessSpec

ProbeStage = Literal["answering", "models", "canary"]

#: Probe stages in order: ComfyUI answers, the pool's models are present, the canary ran.
PROBE_STAGES: tuple[ProbeStage, ...] = ("answering", "models", "canary")

#: ``actual_status`` values that never lead back to running: terminate at once.
_DOWN = frozenset({"exited", "stopped", "error", "frozen"})
#: The host stopped reporting; it may come back: terminate after a grace.
_LOST = frozenset({"offline", "unknown"})
_BEFORE_CONTRACT: frozenset[str] = frozenset({"Pending", "Renting"})
_BEFORE_RUNNING: frozenset[str] = frozenset({"Pending", "Renting", "Provisioning"})
_PROBED: frozenset[str] = frozenset({"Starting", "Ready", "Draining"})


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


#: The probe reason of an answer past its byte cap (``comfy.ProbeReason.TOO_LARGE``).
PROBE_TOO_LARGE = "too_large"
#: The probe reason of a refused channel (``comfy.ProbeReason.INSECURE``).
PROBE_INSECURE = "insecure_channel"


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
    """What to do with an instance now. An empty ``reason`` means: keep the current one."""

    phase: Phase
    terminate: bool
    reason: str
    message: str
    start_probe: bool
    """Probe ComfyUI (readiness while Starting, liveness while Ready/Draining)."""


def matches_failure_pattern(status_msg: str | None, patterns: Sequence[str]) -> str | None:
    """The first pattern that is a case-insensitive substring of ``status_msg``, or None."""
    if not status_msg:
        return None
    text = status_msg.lower()
    for pattern in patterns:
        if pattern and pattern.lower() in text:
            return pattern
    return None


def is_stuck_loading(
    rental: RentalView, *, rented_at: datetime | None, now: datetime, policy: FailurePolicySpec
) -> bool:
    """Whether the rental is still not running ``loadingTimeout`` after it was rented."""
    if rented_at is None or (rental.actual_status or "").lower() == "running":
        return False
    return now - rented_at > parse_duration(policy.loading_timeout)


def status_since(
    observed: str | None, *, last: str | None, last_since: datetime | None, now: datetime
) -> datetime:
    """Since when the rental has had the ``actual_status`` observed now: the time kept
    with the last one seen (``last``, ``last_since``, from the object's status) while it
    is unchanged, else ``now``. Kept in the object, so that an operator restarting more
    often than the offline grace still replaces a machine that went offline."""
    if last_since is not None and observed == last and last_since <= now:
        return last_since
    return now


def stopped_by_vastai(rental: RentalView | None) -> bool:
    """Vast.ai means the rental to be stopped (``intended_status: stopped``; a rental
    waiting for its GPU shows ``cur_state: stopped`` with ``intended_status: running``):
    what it does to every running rental when the account's credit is gone (contract F18).
    The operator's own stops are phase ``Stopped`` before the call."""
    if rental is None or not rental.present:
        return False
    return (rental.intended_status or "").lower() == "stopped"


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
    progress_at: datetime | None = None,
    offline_grace: timedelta = timedelta(minutes=2),
    vanish_grace: timedelta = timedelta(minutes=1),
) -> InstanceDecision:
    """Next phase of an instance, and whether to terminate it (see the module docstring).

    ``rental`` is None while no contract exists yet (Pending/Renting). ``status_since``
    is when the current ``actual_status`` was first seen (for the offline grace).
    ``progress_at`` is when a model download last made progress: while the machine
    downloads, the readiness timeout counts from it rather than from ``running_at`` (a
    large model over a slow link is not a failure; a stalled one is the provisioning step's
    ``ModelDownloadStalled``).
    """
    if phase in ("Terminating", "Failed"):
        return InstanceDecision(phase, False, "", "", start_probe=False)
    probing = phase in _PROBED
    if rental is None:
        if phase in _BEFORE_CONTRACT:
            return InstanceDecision(phase, False, "", "", start_probe=False)
        rental = RentalView(present=False)
    if not rental.present:
        if rented_at is not None and now - rented_at < vanish_grace:
            return InstanceDecision(phase, False, "", "", start_probe=probing)
        return _fail("RentalVanished", "the rental is gone from the Vast.ai listing")

    pattern = matches_failure_pattern(rental.status_msg, policy.terminate_patterns)
    if pattern is not None:
        return _fail(
            "StatusMessageFailure",
            f"status message matches {pattern!r}: {_clip(rental.status_msg)}",
        )

    status = (rental.actual_status or "").lower()
    scheduling = (
        (rental.cur_state or "").lower() == "stopped"
        and (rental.intended_status or "running").lower() == "running"
        and status != "running"
    )
    if status in _DOWN:
        return _fail("MachineOffline", f"{_describe(rental)} on a rental that should run")
    if status in _LOST or scheduling:
        lost_long = status_since is not None and now - status_since >= offline_grace
        if lost_long or probe_failures >= policy.unreachable_probes:
            return _fail("MachineOffline", f"{_describe(rental)} for too long")
        return InstanceDecision(
            phase, False, "MachineLost", f"{_describe(rental)}; waiting", start_probe=probing
        )

    if probe is not None and probe.reason == PROBE_TOO_LARGE:
        # A machine whose ComfyUI answers past the byte caps is hostile or broken: it is
        # replaced at once and its host cooled down (not probed again until a timeout).
        return _fail("MachineAnswerTooLarge", f"ComfyUI answered too much: {_clip(probe.message)}")
    if probe is not None and probe.reason == PROBE_INSECURE:
        # Plain HTTP where TLS is required, or a certificate other than the pinned one:
        # the token is never sent to it; replaced at once.
        return _fail("MachineChannelInsecure", _clip(probe.message))
    if phase in _BEFORE_RUNNING:
        return _before_running(rental, status, rented_at=rented_at, now=now, policy=policy)
    if phase == "Starting":
        return _starting(
            probe, running_at=running_at, progress_at=progress_at, now=now, readiness=readiness
        )
    # Ready or Draining: liveness.
    if probe_failures >= policy.unreachable_probes:
        last = " ".join(filter(None, [probe.reason, probe.message])) if probe else ""
        return _fail(
            "ComfyUnreachable",
            f"ComfyUI failed {probe_failures} probes in a row"
            + (f" (last: {_clip(last)})" if last else ""),
        )
    return InstanceDecision(phase, False, "", "", start_probe=True)


def _before_running(
    rental: RentalView,
    status: str,
    *,
    rented_at: datetime | None,
    now: datetime,
    policy: FailurePolicySpec,
) -> InstanceDecision:
    timeout = parse_duration(policy.loading_timeout)
    late = rented_at is not None and now - rented_at > timeout
    if status == "running":
        if rental.has_port:
            return InstanceDecision(
                "Starting", False, "Running", "the machine runs; probing ComfyUI", start_probe=True
            )
        if late:
            return _fail(
                "LoadingTimeout",
                f"running but the ComfyUI port is not mapped {policy.loading_timeout}"
                " after the rental",
            )
        return InstanceDecision(
            "Provisioning", False, "WaitingForPort", "running; port not mapped yet", False
        )
    if late:
        return _fail(
            "LoadingTimeout",
            f"still {status or 'being created'} {policy.loading_timeout} after the rental"
            + (f" ({_clip(rental.status_msg)})" if rental.status_msg else ""),
        )
    return InstanceDecision(
        "Provisioning", False, "Loading", _clip(rental.status_msg), start_probe=False
    )


def _starting(
    probe: ProbeView | None,
    *,
    running_at: datetime | None,
    progress_at: datetime | None,
    now: datetime,
    readiness: ReadinessSpec,
) -> InstanceDecision:
    final: ProbeStage = "canary" if readiness.canary.enabled else "models"
    if probe is not None and probe.ok and _rank(probe.stage) >= _rank(final):
        return InstanceDecision("Ready", False, "Ready", f"{final} passed", start_probe=True)
    step = _pending_step(probe)
    since = running_at
    if running_at is not None and progress_at is not None and progress_at > running_at:
        since = progress_at
    if since is not None and now - since > parse_duration(readiness.timeout):
        last = " ".join(filter(None, [probe.reason, probe.message])) if probe else ""
        after = "running" if since is running_at else "the last model download progress"
        return _fail(
            "ReadinessTimeout",
            f"not ready {readiness.timeout} after {after}: step {step!r} did not complete"
            + (f" (last probe: {_clip(last)})" if last else ""),
        )
    return InstanceDecision("Starting", False, "Waiting", f"waiting for {step}", start_probe=True)


def _pending_step(probe: ProbeView | None) -> ProbeStage:
    """The readiness step that has not completed yet."""
    if probe is None:
        return "answering"
    if not probe.ok:
        return probe.stage
    return PROBE_STAGES[min(_rank(probe.stage) + 1, len(PROBE_STAGES) - 1)]


def _rank(stage: ProbeStage) -> int:
    return PROBE_STAGES.index(stage)


def _fail(reason: str, message: str) -> InstanceDecision:
    return InstanceDecision("Failed", True, reason, message, start_probe=False)


def _describe(rental: RentalView) -> str:
    return (
        f"actual_status={rental.actual_status} intended_status={rental.intended_status}"
        f" cur_state={rental.cur_state}"
    )


def _clip(text: str | None, limit: int = 300) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
