"""Spending limits over HTTP: my spend (the page header, the profile), the admins'
overrides (the console), and the submission guard (402 past a limit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.responses import JSONResponse

from warmpool.api import jobs
from warmpool.api.accounts.limits import SpendLimitError, Standing, Window
from warmpool.api.accounts.routes import accounts_of
from warmpool.api.accounts.schemas import (
    LimitOverrideOut,
    LimitRequest,
    LimitsOut,
    SpendOut,
    WindowOut,
)
from warmpool.api.auth import User
from warmpool.api.deps import AdminDep, RecorderDep, StudioDep, UserDep
from warmpool.api.schemas import GenerationOut, GenerationRequest
from warmpool.api.state import Studio

router = APIRouter(tags=["spending"])
Owner = Annotated[str, Path(min_length=1, max_length=320)]


def window_out(w: Window) -> WindowOut:
    return WindowOut(spent=w.spent, limit=w.limit, left=w.left, resets_at=w.resets_at)


def spend_out(standing: Standing) -> SpendOut:
    return SpendOut(day=window_out(standing.day), month=window_out(standing.month))


async def on_limit(request: Request, exc: Exception) -> JSONResponse:
    """402 with what is left and when it resets (the app's exception handler)."""
    assert isinstance(exc, SpendLimitError)
    w = exc.window
    return JSONResponse(
        status_code=status.HTTP_402_PAYMENT_REQUIRED,
        content={
            "detail": str(exc),
            "window": w.name,
            "limit": w.limit,
            "spent": w.spent,
            "left": w.left,
            "estimate": exc.estimate,
            "resetsAt": w.resets_at.isoformat().replace("+00:00", "Z"),
        },
    )


async def create_within_limits(
    studio: Studio, user: User, req: GenerationRequest, request: Request
) -> GenerationOut:
    """Reserve the estimate (402 past a limit), debit the credits (payments on; 402
    without enough), create the job, bind the reservation and the debit to it."""
    accounts = accounts_of(request)
    spending, credits = accounts.spending, accounts.credits
    checked, pool, muse = await jobs.checked(studio, user, req)
    estimate = jobs.estimate_of(studio, checked, pool, muse)
    key = await spending.reserve(user.name, estimate.dollars)
    debit = ""
    try:
        if credits is not None:  # payments on: 402 without enough credit
            debit = await credits.debit(user.name, estimate.dollars)
        out = await jobs.create_checked(studio, user, checked, pool, muse, estimate)
    except BaseException:
        await spending.release(key)
        if credits is not None and debit:
            await credits.release(debit)
        raise
    await spending.bind(key, out.name)
    if credits is not None:
        await credits.bind(debit, out.name)
    return out


@router.get("/api/v1/account/spend", summary="My spend today and this month, and what is left")
async def my_spend(user: UserDep, request: Request) -> SpendOut:
    return spend_out(await accounts_of(request).spending.standing(user.name))


@router.get("/api/v1/admin/limits", summary="Default limits and every user's override")
async def list_limits(user: AdminDep, request: Request) -> LimitsOut:
    spending = accounts_of(request).spending
    return LimitsOut(
        default_daily=spending.default_daily,
        default_monthly=spending.default_monthly,
        overrides=[
            LimitOverrideOut(
                owner=o.owner, daily=o.daily, monthly=o.monthly,
                updated_at=o.updated_at, updated_by=o.updated_by,
                spend=spend_out(await spending.standing(o.owner)),
            )
            for o in await spending.overrides()
        ],
    )  # fmt: skip


@router.put(
    "/api/v1/admin/limits/{owner}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a user's daily and monthly limits (null: no limit)",
)
async def set_limits(
    user: AdminDep, owner: Owner, body: LimitRequest, request: Request, audit: RecorderDep
) -> Response:
    await accounts_of(request).spending.set_override(
        owner, daily=body.daily, monthly=body.monthly, by=user.name
    )
    detail = {"daily": body.daily, "monthly": body.monthly}
    await audit(user, "limits.set", "User", owner, detail=detail)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/api/v1/admin/limits/{owner}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Back to the default limits",
)
async def clear_limits(
    user: AdminDep, owner: Owner, request: Request, audit: RecorderDep
) -> Response:
    if not await accounts_of(request).spending.clear_override(owner):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no override for this user")
    await audit(user, "limits.clear", "User", owner)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


__all__ = ["StudioDep", "create_within_limits", "on_limit", "router"]
