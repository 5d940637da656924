"""Who am I, and the session cookie of token mode."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from warmpool.api.auth import SESSION_COOKIE
from warmpool.api.deps import RecorderDep, StudioDep, UserDep
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
    """Token mode: checks the token and sets an HttpOnly, SameSite=Strict session cookie
    (a signed session value, not the token; ``Secure`` when the outside scheme is https),
    so images and the progress stream work in the browser."""
    if studio.settings.studio_auth != "token":
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="sessions are for token mode")
    # Audited with a keyed fingerprint of the token (never the token) and the address.
    fingerprint = {"token": audit.records.audit.fingerprint(body.token)}
    try:
        name, value = await studio.auth.sign_in(request, body.token, body.name)
    except HTTPException as e:
        outcome = "denied" if e.status_code == status.HTTP_401_UNAUTHORIZED else "limited"
        await audit("anonymous", "session.sign_in", outcome=outcome, detail=fingerprint)
        raise
    await audit(name, "session.sign_in", "User", name, detail=fingerprint)
    secure = studio.settings.studio_secure_cookies
    if secure is None:
        secure = studio.auth.peers.scheme(request) == "https"
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=secure,
        max_age=studio.settings.studio_session_seconds,
        path="/",
    )
    return response


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out")
async def sign_out(studio: StudioDep, request: Request) -> Response:
    """Revokes the session (the cookie stops working even if it was copied) and clears it."""
    await studio.auth.sign_out(request)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
