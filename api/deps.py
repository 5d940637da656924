"""FastAPI dependencies: the studio state, the calling user (rate-limited), the records
(the service, an audit recorder bound to the request) and the admin-only guard."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from warmpool.api.auth import User
from warmpool.api.records.service import Records
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


def records_of(request: Request) -> Records:
    records: Records = request.app.state.records
    return records


class Recorder:
    """``await audit(user, "muse.delete", "Muse", name)`` from a route."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.records = records_of(request)

    async def __call__(
        self,
        actor: User | str,
        action: str,
        kind: str = "",
        name: str = "",
        *,
        outcome: str = "ok",
        detail: dict[str, Any] | None = None,
    ) -> None:
        who = actor if isinstance(actor, str) else actor.name
        await self.records.record(
            self.request, who, action, kind, name, outcome=outcome, detail=detail
        )


async def admin_user(request: Request, user: Annotated[User, Depends(current_user)]) -> User:
    """The caller when an admin; 403 (recorded) for everyone else."""
    if not user.admin:
        await Recorder(request)(
            user, "admin.denied", "Path", request.url.path[:253], outcome="denied"
        )
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the admin group only")
    return user


async def records_dep(request: Request) -> Records:
    return records_of(request)  # a coroutine: no thread-pool hop (see ``deps.studio_dep``)


async def recorder(request: Request) -> Recorder:
    return Recorder(request)


RecordsDep = Annotated[Records, Depends(records_dep)]
RecorderDep = Annotated[Recorder, Depends(recorder)]
AdminDep = Annotated[User, Depends(admin_user)]
