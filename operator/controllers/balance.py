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
from datetime import datetime, timedelta

from warmpool.crds.common import ConditionStatus
from warmpool.operator import errors, metrics
from warmpool.operator.controllers import spending
from warmpool.operator.decisions import conditions, drift
from warmpool.operator.deps import Deps

logger = logging.getLogger(__name__)

CONDITION = "SpendReconciled"
CREDIT_CONDITION = "AccountCredit"
CREDIT_EXHAUSTED = "CreditExhausted"


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
        await deps.active.wait()  # the active replica checks, not its standbys
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


def out_of_credit(deps: Deps) -> bool:
    """The newest look at the account found no credit left."""
    return bool(deps.balance_samples) and deps.balance_samples[-1].credit <= 0


async def confirm_out_of_credit(deps: Deps, *, since: datetime) -> bool:
    """Whether the account's credit is gone, from a look taken at ``since`` or later (when
    the listing showed a machine stopped: one ``GET /users/current/`` serves all the
    machines Vast.ai stopped at once). A failed look answers with the last one known."""
    async with deps.credit_lock:
        latest = deps.balance_samples[-1] if deps.balance_samples else None
        if latest is None or latest.at < since:
            try:
                await check(deps)
            except errors.WarmpoolError as exc:
                logger.warning("Credit check failed: %s", exc)
    return out_of_credit(deps)


def credit_condition(deps: Deps) -> list[conditions.SetCondition]:
    """``AccountCredit`` for a pool's status: False while the account has no credit (Vast.ai
    stopped its machines; the pool rents and starts nothing), True once it has (none before
    the first look)."""
    if not deps.balance_samples:
        return []
    credit = deps.balance_samples[-1].credit
    if credit <= 0:
        message = (
            f"the Vast.ai account has no credit left (${credit:.2f}): Vast.ai stopped its "
            "machines; nothing is rented or started until credit is added"
        )
        return [conditions.SetCondition(CREDIT_CONDITION, "False", CREDIT_EXHAUSTED, message)]
    return [conditions.SetCondition(CREDIT_CONDITION, "True", "CreditAvailable",
                                    f"${credit:.2f} of credit on the Vast.ai account")]  # fmt: skip
