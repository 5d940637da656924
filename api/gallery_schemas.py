"""Request and response bodies of the gallery's curation: marks, albums, share links,
storage use. camelCase on the wire, like the rest of the studio API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from warmpool.api.schemas import OBJECT_NAME_PATTERN, Out


class In(BaseModel):
    """Base of request bodies: camelCase accepted, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=Out.model_config["alias_generator"], populate_by_name=True, extra="forbid"
    )


class MarkRequest(In):
    """Change a favourite flag and/or rating (``rating: null`` removes the rating)."""

    favourite: bool | None = None
    rating: int | None = Field(None, ge=1, le=5, description="1–5 stars; null removes it.")


class MarkOut(Out):
    job: str
    index: int
    favourite: bool
    rating: int | None = None


class AlbumRequest(In):
    name: str = Field(min_length=1, max_length=100, pattern=r"\S", description="Album name.")


class AlbumOut(Out):
    id: int
    name: str
    count: int = 0
    created: str


class AlbumItemRequest(In):
    job: str = Field(max_length=253, pattern=OBJECT_NAME_PATTERN)
    index: int = Field(ge=0, le=1000)


class GenerationDeleted(Out):
    job: str
    outputs: int = Field(description="Outputs removed from the store.")


class UsageOut(Out):
    outputs: int
    bytes: int
    retention_days: int | None = Field(
        None, description="Outputs older than this are deleted unless kept; null = never."
    )


class ShareRequest(In):
    """A link to one output (``job`` + ``index``) or one album."""

    job: str | None = Field(None, max_length=253, pattern=OBJECT_NAME_PATTERN)
    index: int | None = Field(None, ge=0, le=1000)
    album: int | None = Field(None, ge=1, le=2**53)
    expires_in_hours: int = Field(168, ge=1, le=24 * 365, description="Lifetime, hours.")

    @model_validator(mode="after")
    def _one_target(self) -> ShareRequest:
        if self.album is None and (self.job is None or self.index is None):
            raise ValueError("give job and index, or album")
        if self.album is not None and (self.job is not None or self.index is not None):
            raise ValueError("give job and index, or album, not both")
        return self


class ShareOut(Out):
    id: str
    kind: Literal["output", "album"]
    job: str | None = None
    index: int | None = None
    album: int | None = None
    url: str = Field(description="The public link (path on this studio).")
    created: str
    expires: str
    revoked: bool


class SharedItem(Out):
    """One output on a shared page: no owner, no key, nothing to navigate elsewhere."""

    n: int
    kind: str
    prompt: str
    content_type: str
    width: int | None = None
    height: int | None = None
    url: str
    thumbnail_url: str


class SharedPage(Out):
    kind: Literal["output", "album"]
    title: str
    expires: str
    items: list[SharedItem]
