"""FastAPI dependencies: the studio state and the calling user (rate-limited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from warmpool.api.auth import User
from warmpool.api.state import Studio, studio_of


async def current_user(request: Request) -> User:
    """The authenticated caller; 429 with ``Retry-After`` past the per-minute limit."""
    studio = studio_of(request)
    user = await studio.auth.authenticate(request)
    wait = await studio.limiter.hit(user.name)
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"more than {studio.limiter.per_minute} requests per minute",
            headers={"Retry-After": str(wait)},
        )
    return user


async def studio_dep(request: Request) -> Studio:
    """:func:`studio_of` as a coroutine: FastAPI runs a plain function dependency in its
    thread pool, a hop per request for a dictionary read."""
    return studio_of(request)


StudioDep = Annotated[Studio, Depends(studio_dep)]
UserDep = Annotated[User, Depends(current_user)]
