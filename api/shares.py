"""Share links: a read-only page of one output or one album, for anyone with the link.

A link is ``/s/<token>``; the token is a random 128-bit link id signed with
itsdangerous (``URLSafeSerializer``: HMAC over the id, salt ``warmpool-share``) under
``WARMPOOL_STUDIO_SHARE_SECRET`` or a random key kept in the records database, so the
same link always has the same token (the owner's list shows the URL they handed out).
The row in ``share_link`` is the authority: a link works only while its row exists, is
not revoked and has not expired. A token that is altered, revoked, expired, or names a
deleted output answers 404, all alike.

What a shared page may reach: ``GET /api/v1/shared/<token>`` (the items: kind, prompt,
size, its own URLs) and ``GET /api/v1/shared/<token>/<n>`` (+ ``/thumbnail``), where
``n`` counts the link's own items. Nothing names the owner, the job, a store key, or
anything else of the studio; answers are ``Cache-Control: no-store`` so a revoked link
is not served from a cache either.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import itsdangerous
from fastapi import HTTPException, Request, status

from warmpool.api import gallery
from warmpool.api.auth import User
from warmpool.api.deps import records_of
from warmpool.api.problems import not_found
from warmpool.api.records.audit import utc
from warmpool.api.records.curation import Curation
from warmpool.api.records.tables import ShareLink
from warmpool.api.state import Studio
from warmpool.operator.adapters import artifacts

SALT = "warmpool-share"
PAGE = "/s/"


async def signer_of(request: Request) -> itsdangerous.URLSafeSerializer:
    """The app's serializer (its key read once)."""
    state = request.app.state
    found: itsdangerous.URLSafeSerializer | None = getattr(state, "share_signer", None)
    if found is None:
        studio: Studio = state.studio
        configured = studio.settings.studio_share_secret
        if configured is not None:
            key = configured.get_secret_value()
        else:
            key = await records_of(request).db.fact("share_key", secrets.token_hex(32))
        found = state.share_signer = itsdangerous.URLSafeSerializer(key, salt=SALT)
    return found


def token_of(signer: itsdangerous.URLSafeSerializer, link_id: str) -> str:
    return str(signer.dumps(link_id))


def url_of(signer: itsdangerous.URLSafeSerializer, link: ShareLink) -> str:
    return PAGE + token_of(signer, link.id)


def new_id() -> str:
    return secrets.token_hex(16)


def is_live(link: ShareLink, now: datetime) -> bool:
    return link.revoked_at is None and utc(link.expires_at) > now


async def resolve(
    studio: Studio,
    curation: Curation,
    signer: itsdangerous.URLSafeSerializer,
    token: str,
    *,
    now: datetime | None = None,
) -> ShareLink:
    """The live link a token stands for; 404 for anything else."""
    now = utc(now or datetime.now(UTC))
    try:
        link_id = signer.loads(token)
    except itsdangerous.BadData:
        raise not_found("share link") from None
    link = await curation.share(str(link_id)) if isinstance(link_id, str) else None
    if link is None or not is_live(link, now):
        raise not_found("share link")
    return link


async def shared_records(
    studio: Studio, curation: Curation, link: ShareLink
) -> list[artifacts.OutputRecord]:
    """The outputs a link shows, still owned by its maker (deleted ones drop out)."""
    owner = User(link.owner)
    if link.album_id is None:
        assert link.job is not None and link.idx is not None
        keys = [(link.job, link.idx)]
    else:
        keys = await curation.items(link.album_id)
    out = []
    for job, idx in keys:
        try:
            out.append(await gallery.record_of(studio, owner, job, idx))
        except HTTPException as e:  # a deleted item drops out, the others stay
            if e.status_code != status.HTTP_404_NOT_FOUND:
                raise
    return out


def expiry_for(studio: Studio, hours: int, now: datetime) -> datetime:
    """``now`` + the asked lifetime, at most the configured longest."""
    longest = timedelta(days=studio.settings.studio_share_max_days)
    return now + min(timedelta(hours=hours), longest)
