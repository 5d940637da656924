"""Share links: made, listed and revoked by their owner; opened by anyone with the link.

The public routes take no user: ``/s/<token>`` (the read-only page, ``share.html``),
``/api/v1/shared/<token>`` (its items) and ``/api/v1/shared/<token>/<n>`` (+
``/thumbnail``). They are limited per client address like a user's requests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Annotated

import itsdangerous
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.responses import FileResponse, StreamingResponse

from warmpool.api import files, gallery_ops, shares
from warmpool.api.deps import RecorderDep, StudioDep, UserDep, records_of
from warmpool.api.gallery_schemas import SharedItem, SharedPage, ShareOut, ShareRequest
from warmpool.api.problems import FieldError, not_found
from warmpool.api.records.audit import utc
from warmpool.api.records.curation import Curation
from warmpool.api.records.tables import ShareLink
from warmpool.api.state import Studio, studio_of
from warmpool.operator.adapters import artifacts

router = APIRouter(tags=["shares"])

CurationDep = Annotated[Curation, Depends(gallery_ops.curation_of)]
SignerDep = Annotated[itsdangerous.URLSafeSerializer, Depends(shares.signer_of)]
Token = Annotated[str, Path(min_length=10, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]
LinkId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
N = Annotated[int, Path(ge=0, le=10_000)]
NO_STORE = "no-store"


def _iso(at: datetime) -> str:
    return utc(at).isoformat(timespec="seconds").replace("+00:00", "Z")


def share_out(signer: itsdangerous.URLSafeSerializer, link: ShareLink) -> ShareOut:
    return ShareOut(
        id=link.id,
        kind="album" if link.album_id is not None else "output",
        job=link.job,
        index=link.idx,
        album=link.album_id,
        url=shares.url_of(signer, link),
        created=_iso(link.created_at),
        expires=_iso(link.expires_at),
        revoked=link.revoked_at is not None,
    )


@router.post("/api/v1/shares", status_code=status.HTTP_201_CREATED, summary="Make a share link")
async def create_share(
    studio: StudioDep,
    user: UserDep,
    curation: CurationDep,
    signer: SignerDep,
    req: ShareRequest,
    audit: RecorderDep,
) -> ShareOut:
    """A signed, expiring, revocable link to one of my outputs or albums."""
    key = None
    if req.album is not None:
        if await curation.album(user.name, req.album) is None:
            raise FieldError(["body", "album"], "not one of your albums", type="unknown_album")
    else:
        assert req.job is not None and req.index is not None
        record = await gallery_ops.own_output(studio, user, req.job, req.index)
        if record.owner != user.name:  # an admin shares only their own outputs too
            raise FieldError(["body", "job"], "not one of your outputs", type="unknown_output")
        key = (req.job, req.index)
    now = datetime.now(UTC)
    link = await curation.create_share(
        shares.new_id(), user.name, expires=shares.expiry_for(studio, req.expires_in_hours, now),
        key=key, album_id=req.album,
    )  # fmt: skip
    expires = _iso(link.expires_at)
    await audit(user, "share.create", "ShareLink", link.id, detail={"expires": expires})
    return share_out(signer, link)


@router.get("/api/v1/shares", summary="My share links, newest first")
async def list_shares(user: UserDep, curation: CurationDep, signer: SignerDep) -> list[ShareOut]:
    return [share_out(signer, link) for link in await curation.shares(user.name)]


@router.delete(
    "/api/v1/shares/{link_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke a link"
)
async def revoke_share(
    user: UserDep, curation: CurationDep, link_id: LinkId, audit: RecorderDep
) -> Response:
    if not await curation.revoke_share(user.name, link_id):
        raise not_found("share link")
    await audit(user, "share.revoke", "ShareLink", link_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- public


async def limited(request: Request) -> Studio:
    """The studio, after the per-address limit of anonymous readers (429 past it)."""
    studio = studio_of(request)
    address = records_of(request).address(request)
    wait = await studio.limiter.hit(f"share:{address}")
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many requests",
            headers={"Retry-After": str(wait)},
        )
    return studio


PublicDep = Annotated[Studio, Depends(limited)]


async def _records(
    studio: Studio, curation: Curation, signer: itsdangerous.URLSafeSerializer, token: str
) -> tuple[ShareLink, list[artifacts.OutputRecord]]:
    link = await shares.resolve(studio, curation, signer, token)
    found = await shares.shared_records(studio, curation, link)
    if not found:
        raise not_found("share link")
    return link, found


@router.get("/s/{token}", include_in_schema=False)
async def share_page(token: Token) -> FileResponse:
    """The read-only page; it reads its items from ``/api/v1/shared/<token>``."""
    page = resources.files("warmpool.api") / "static" / "share.html"
    return FileResponse(str(page), media_type="text/html", headers={"Cache-Control": NO_STORE})


@router.get("/api/v1/shared/{token}", summary="What a share link shows (no sign-in)")
async def shared(
    studio: PublicDep, curation: CurationDep, signer: SignerDep, token: Token
) -> Response:
    link, found = await _records(studio, curation, signer, token)
    album = await curation.album(None, link.album_id) if link.album_id is not None else None
    base = f"/api/v1/shared/{token}"
    page = SharedPage(
        kind="album" if album is not None else "output",
        title=album.name if album is not None else (found[0].prompt[:120] or "Shared image"),
        expires=_iso(link.expires_at),
        items=[
            SharedItem(
                n=n, kind=r.kind, prompt=r.prompt, content_type=r.content_type,
                width=r.width, height=r.height, url=f"{base}/{n}",
                thumbnail_url=f"{base}/{n}/thumbnail",
            )
            for n, r in enumerate(found)
        ],
    )  # fmt: skip
    return Response(
        page.model_dump_json(by_alias=True),
        media_type="application/json",
        headers={"Cache-Control": NO_STORE},
    )


async def _nth(
    studio: Studio,
    curation: Curation,
    signer: itsdangerous.URLSafeSerializer,
    token: str,
    n: int,
) -> artifacts.OutputRecord:
    _, found = await _records(studio, curation, signer, token)
    if n >= len(found):
        raise not_found("share link")
    return found[n]


@router.get(
    "/api/v1/shared/{token}/{n}",
    summary="An output of a share link",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/png": {}, "video/mp4": {}}}},
)
async def shared_output(
    studio: PublicDep, curation: CurationDep, signer: SignerDep, token: Token, n: N
) -> StreamingResponse:
    record = await _nth(studio, curation, signer, token, n)
    response = await files.download(
        studio, key=record.key, content_type=record.content_type, job="shared", index=n,
        disposition="inline",
    )  # fmt: skip
    response.headers["Cache-Control"] = NO_STORE
    return response


@router.get(
    "/api/v1/shared/{token}/{n}/thumbnail",
    summary="Thumbnail of an output of a share link",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}}}},
)
async def shared_thumbnail(
    studio: PublicDep, curation: CurationDep, signer: SignerDep, token: Token, n: N
) -> Response:
    record = await _nth(studio, curation, signer, token, n)
    response = await files.thumbnail(studio, key=record.key, sha256=record.sha256)
    response.headers["Cache-Control"] = NO_STORE
    return response
