"""Who am I, and the session cookie of token mode."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from warmpool.api.auth import SESSION_COOKIE
from warmpool.api.deps import StudioDep, UserDep
from warmpool.api.records.deps import RecorderDep
from warmpool.api.schemas import SessionRequest, UserOut

router = APIRouter(prefix="/api/v1", tags=["session"])


@router.get("/me", summary="The calling user")
async def me(studio: StudioDep, user: UserDep) -> UserOut:
    s = studio.settings
    return UserOut(
        name=user.name,
        admin=user.admin,
        auth=s.studio_auth,
        limits={
            "queuedJobs": s.studio_max_queued_jobs,
            "requestsPerMinute": s.studio_requests_per_minute,
            "uploadBytes": s.studio_upload_max_bytes,
        },
    )


@router.post("/session", status_code=status.HTTP_204_NO_CONTENT, summary="Sign in with a token")
async def sign_in(
    studio: StudioDep, body: SessionRequest, request: Request, audit: RecorderDep
) -> Response:
    """Token mode: checks the token and keeps it in an HttpOnly, SameSite=Strict cookie,
    so images and the progress stream work in the browser."""
    if studio.settings.studio_auth != "token":
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="sessions are for token mode")
    name = await studio.auth.user_for_token(body.token)
    # Audited with a keyed fingerprint of the token (never the token) and the address.
    fingerprint = {"token": audit.records.audit.fingerprint(body.token)}
    if name is None:
        await audit("anonymous", "session.sign_in", outcome="denied", detail=fingerprint)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="the token is not valid")
    await audit(name, "session.sign_in", "User", name, detail=fingerprint)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.set_cookie(
        SESSION_COOKIE,
        body.token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=7 * 86400,
        path="/",
    )
    return response


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out")
async def sign_out() -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
