"""Spend reconciled with the Vast.ai account: a timer compares the account's credit drop
with the spend the operator counted (:mod:`..decisions.drift`).

Every ``balance_check_interval`` seconds: one ``GET /users/current/`` (the adapter;
the key only in its header, never in a log or error), one count of every served pool's
spend (:func:`spending.count_fleet`, the figure of the operator-wide cap), one sample.
The verdict goes to the metrics (``warmpool_vastai_balance_drift_dollars`` against
``warmpool_vastai_balance_drift_threshold_dollars``: the chart's alert), to a warning
when it turns, and to the condition ``SpendReconciled`` of every pool the operator
serves (:func:`pool_condition`: the account is operator-wide, so every pool shows it).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from warmpool.crds.common import ConditionStatus
from warmpool.operator import errors, metrics
from warmpool.operator.controllers import spending
from warmpool.operator.decisions import conditions, drift
from warmpool.operator.deps import Deps

logger = logging.getLogger(__name__)

CONDITION = "SpendReconciled"


async def check(deps: Deps) -> drift.DriftVerdict:
    """One look at the account; the verdict is kept in ``deps.drift``."""
    settings = deps.settings
    account = await deps.vastai.show_user()
    credit = account.remaining
    if credit is None:
        raise errors.VastaiMalformedResponseError(
            "users/current: neither credit nor balance", endpoint="GET /api/v0/users/current/"
        )
    spent, _ = await spending.count_fleet(deps)
    now = deps.now()
    window = timedelta(seconds=settings.balance_drift_window)
    samples = [*deps.balance_samples, drift.BalanceSample(now, credit, spent)]
    deps.balance_samples = drift.keep_samples(samples, now=now, window=window)
    verdict = drift.assess_drift(
        deps.balance_samples,
        now=now,
        window=window,
        threshold=settings.balance_drift_threshold_usd,
    )
    before = deps.drift
    if verdict.exceeded and (before is None or not before.exceeded):
        logger.warning("Spend drift: %s.", verdict.message)
    elif before is not None and before.exceeded and not verdict.exceeded:
        logger.info("Spend reconciled again: %s.", verdict.message)
    deps.drift = verdict
    metrics.VASTAI_CREDIT.set(credit)
    metrics.OPERATOR_SPEND_TODAY.set(spent)
    metrics.BALANCE_DRIFT.set(verdict.drift)
    metrics.BALANCE_DRIFT_THRESHOLD.set(settings.balance_drift_threshold_usd)
    return verdict


async def check_forever(deps: Deps) -> None:
    """Check every ``balance_check_interval`` seconds (never when it is 0) until cancelled."""
    interval = deps.settings.balance_check_interval
    if interval <= 0:
        return
    while True:
        try:
            await check(deps)
        except errors.WarmpoolError as exc:  # messages are scrubbed of the key
            logger.warning("Balance check failed; will retry: %s", exc)
        await asyncio.sleep(interval)


def pool_condition(deps: Deps) -> list[conditions.SetCondition]:
    """``SpendReconciled`` for a pool's status: Unknown while measuring, False past the
    threshold (none while checks are off or not begun)."""
    verdict = deps.drift
    if verdict is None:
        return []
    status: ConditionStatus = (
        "Unknown" if verdict.reason == drift.MEASURING else "False" if verdict.exceeded else "True"
    )
    return [conditions.SetCondition(CONDITION, status, verdict.reason, verdict.message)]
