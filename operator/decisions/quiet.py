"""Whether a Ready instance's daemon steps this interval, or nothing is due. Pure.

A step of a Ready instance reads its object, its pool's spec, its row of the shared
Vast.ai listing and the account's credit state; it probes ComfyUI every
``ready_probe_interval`` seconds and refreshes the clock fields of its status (the
probe's time, the accrued cost) every ``status_refresh`` seconds. When none of those
inputs changed since a step that ended Ready, and neither the probe nor the refresh is
due, the step would end exactly as that one did: no probe, no write, Ready again (the
lifecycle's time-bound verdicts, the offline and vanish graces, only count while the row
says something is off, and a changed row steps). The daemon skips it then.

The caller builds an :class:`Observation` at the end of every full step (the version it
wrote or read) and one at the start of every interval, and asks :func:`step_due`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime

from warmpool.operator.decisions.lifecycle import RentalView


@dataclass(frozen=True)
class Observation:
    """What the next step of an instance depends on, besides the clock."""

    version: str | None
    """The object's resourceVersion (after the step's own write, for the last step)."""
    current: bool
    """The body at hand shows the version this process last wrote or read (else the step
    reads the object again: a write of someone else's is on its way)."""
    pool: Hashable
    """What identifies the pool's spec as the step reads it (its uid and generation), None
    when the pool is not known."""
    rental: RentalView | None
    """The instance's row of the shared listing (None: not listed)."""
    url: str | None
    """The ComfyUI URL that row gives (None while it does not run)."""
    out_of_credit: bool
    """The account's credit is gone (the cold tier keeps machines Vast.ai stopped)."""
    phase: str = ""
    comfy_url: str = ""
    probe_ok: bool = False
    probe_failures: int = 0
    probed_at: datetime | None = None
    """When this process (or, after a restart, the status) last probed ComfyUI."""
    refreshed_at: datetime | None = None
    """The status's ``lastProbe.time``: when its clock fields were last written."""


def inputs(o: Observation) -> tuple[object, ...]:
    """The inputs of a step that no clock moves."""
    return (o.version, o.pool, o.rental, o.url, o.out_of_credit)


def step_due(
    last: Observation | None,
    last_ready: bool,
    now_seen: Observation | None,
    *,
    now: datetime,
    probe_every: float,
    refresh_every: float,
) -> bool:
    """Whether the instance's step runs this interval (False: nothing is due, skip it).

    ``last`` is what the last full step saw when it ended, ``last_ready`` whether it ended
    Ready; ``now_seen`` is what is at hand now (None: not a Ready rental of a known pool,
    or the listing could not be had). A step runs unless the instance is Ready,
    its last probe passed, Vast.ai lists it running at the URL its status shows, nothing
    in :func:`inputs` moved, and neither the probe nor the status refresh is due.
    """
    if last is None or now_seen is None or not last_ready or not now_seen.current:
        return True
    if inputs(last) != inputs(now_seen):
        return True
    rental = now_seen.rental
    if rental is None or not rental.present or rental.actual_status != "running":
        return True
    if rental.intended_status == "stopped":  # the cold tier or the account stopped it
        return True
    if now_seen.phase != "Ready" or now_seen.out_of_credit:
        return True
    if not now_seen.probe_ok or now_seen.probe_failures or not now_seen.url:
        return True
    if now_seen.url != now_seen.comfy_url:
        return True
    for at, every in ((now_seen.probed_at, probe_every), (now_seen.refreshed_at, refresh_every)):
        if at is None or (now - at).total_seconds() >= every:
            return True
    return False
