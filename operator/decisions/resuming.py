"""One cold instance, seen by its own daemon: what a ``Stopped`` or ``Resuming`` one does now.

Pure. The pool decides *when* a cold instance is stopped, started or given up
(:mod:`.cold`: ``resumeTimeout``, the GPU taken, ``maxAge``); the instance's daemon follows
its rental in between and decides only what is local to it:

- :func:`decide_stopped`: a stopped rental that vanished is gone (``RentalVanished``); one
  whose stop did not take (``intended_status`` still ``running`` and not scheduling) is
  stopped again (``restop``);
- :func:`decide_resuming`: a started rental that vanished, or whose ``status_msg``
  matches a failure pattern, fails; one whose start was not taken is started again
  (``restart``); a running one with its ComfyUI port mapped is probed (at its new
  address: contract F19) and becomes ``Ready`` once the readiness stages pass; otherwise
  it stays ``Resuming`` — waiting for the GPU (``Scheduling``), loading, or the port.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import FailurePolicySpec
from warmpool.operator.decisions import lifecycle

#: A rental missing from the listing this long after the stop or the start is gone (the
#: listing may lag a moment behind a state change).
VANISH_GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class ColdDecision:
    """The instance decision, plus the Vast.ai call to repeat (a lost stop or start)."""

    decision: lifecycle.InstanceDecision
    restop: bool = False
    restart: bool = False


def _scheduling(rental: lifecycle.RentalView) -> bool:
    return (rental.cur_state or "").lower() == "stopped" and (
        rental.intended_status or ""
    ).lower() == "running"


def decide_stopped(
    rental: lifecycle.RentalView, *, stopped_at: datetime | None, now: datetime
) -> ColdDecision:
    """A ``Stopped`` instance: keep it, stop it again, or give it up (vanished)."""
    if not rental.present:
        if stopped_at is not None and now - stopped_at < VANISH_GRACE:
            return ColdDecision(_keep("Stopped"))
        return ColdDecision(_fail("RentalVanished", "the stopped rental is gone from Vast.ai"))
    intended = (rental.intended_status or "").lower()
    return ColdDecision(_keep("Stopped"), restop=intended not in ("stopped", ""))


def decide_resuming(
    rental: lifecycle.RentalView,
    probe: lifecycle.ProbeView | None,
    *,
    resumed_at: datetime | None,
    now: datetime,
    canary: bool,
    policy: FailurePolicySpec,
) -> ColdDecision:
    """A ``Resuming`` instance: Ready, still resuming (and why), or failed."""
    if not rental.present:
        if resumed_at is not None and now - resumed_at < VANISH_GRACE:
            return ColdDecision(_keep("Resuming", "Starting", "waiting for the listing"))
        return ColdDecision(_fail("RentalVanished", "the started rental is gone from Vast.ai"))
    pattern = lifecycle.matches_failure_pattern(rental.status_msg, policy.terminate_patterns)
    if pattern is not None:
        return ColdDecision(
            _fail("StatusMessageFailure", f"status message matches {pattern!r} after a start")
        )
    status = (rental.actual_status or "").lower()
    if (rental.intended_status or "").lower() == "stopped":
        return ColdDecision(_keep("Resuming", "Starting", "start sent again"), restart=True)
    if status != "running" and _scheduling(rental):
        return ColdDecision(_keep("Resuming", "Scheduling", "waiting for the GPU"))
    if status != "running":
        return ColdDecision(_keep("Resuming", "Loading", f"the machine is {status or 'starting'}"))
    if not rental.has_port:
        return ColdDecision(_keep("Resuming", "WaitingForPort", "running; port not mapped yet"))
    final: lifecycle.ProbeStage = "canary" if canary else "models"
    if (
        probe is not None
        and probe.ok
        and lifecycle.PROBE_STAGES.index(probe.stage) >= lifecycle.PROBE_STAGES.index(final)
    ):
        return ColdDecision(
            lifecycle.InstanceDecision("Ready", False, "Resumed", f"{final} passed", True)
        )
    step = probe.stage if probe is not None and not probe.ok else "answering"
    detail = f" ({probe.reason})" if probe is not None and probe.reason else ""
    return ColdDecision(_keep("Resuming", "Waiting", f"waiting for {step}{detail}", probe=True))


def _keep(
    phase: Phase, reason: str = "", message: str = "", *, probe: bool = False
) -> lifecycle.InstanceDecision:
    return lifecycle.InstanceDecision(phase, False, reason, message, start_probe=probe)


def _fail(reason: str, message: str) -> lifecycle.InstanceDecision:
    return lifecycle.InstanceDecision("Failed", True, reason, message, start_probe=False)
