"""What a pool remembers of failures: hosts in cool-down and the breaker's window.

The one place that writes ``status.hostFailures`` (through the pure
:func:`offers.record_failure`, as the economics engine does) and ``status.recentRentals``;
the instance liveness and the job outcomes both record here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from warmpool.crds.common import format_time
from warmpool.crds.gpupool import GpuPool, RentalOutcome
from warmpool.operator.adapters import kube
from warmpool.operator.adapters.status import update_status
from warmpool.operator.decisions import breaker, offers


async def record_failure(
    client: kube.KubeClient,
    namespace: str,
    pool: str,
    *,
    machine_id: int | None,
    host_id: int | None = None,
    reason: str,
    message: str,
    cooldown: timedelta,
    now: datetime,
    rental: str | None = None,
) -> None:
    """The machine goes into the pool's cool-down ledger; with ``rental`` (an instance
    that failed before it was ever Ready), the breaker's window learns of it too."""
    if machine_id is None and rental is None:
        return

    def mutate(status: dict[str, Any]) -> dict[str, Any]:
        current = GpuPool.model_validate({"status": status}).status
        ledger = (
            offers.record_failure(current.host_failures, machine_id=machine_id, host_id=host_id,
                                  reason=reason, message=message[:300], cooldown=cooldown,
                                  now=now)
            if machine_id is not None
            else offers.prune_ledger(current.host_failures, cooldown=cooldown, now=now)
        )  # fmt: skip
        patch: dict[str, Any] = {"hostFailures": [h.model_dump(by_alias=True) for h in ledger]}
        if rental is not None:
            outcome = RentalOutcome(instance=rental, ok=False, reason=reason,
                                    time=format_time(now))  # fmt: skip
            recent = breaker.record_outcome(current.recent_rentals, outcome, now=now)
            patch["recentRentals"] = [o.model_dump(by_alias=True) for o in recent]
        return patch

    await update_status(client, kube.GPUPOOLS, namespace, pool, mutate)


async def record_success(
    client: kube.KubeClient, namespace: str, pool: str, *, rental: str, now: datetime
) -> None:
    """A rental became Ready: the breaker's window learns of it."""

    def mutate(status: dict[str, Any]) -> dict[str, Any]:
        current = GpuPool.model_validate({"status": status}).status.recent_rentals
        outcome = RentalOutcome(instance=rental, ok=True, reason="", time=format_time(now))
        updated = breaker.record_outcome(current, outcome, now=now)
        return {"recentRentals": [o.model_dump(by_alias=True) for o in updated]}

    await update_status(client, kube.GPUPOOLS, namespace, pool, mutate)
