"""URL builders of the studio API (one place, so routes and answers agree)."""

from __future__ import annotations

from urllib.parse import quote

PREFIX = "/api/v1"


def generation(name: str) -> str:
    return f"{PREFIX}/generations/{quote(name, safe='')}"


def events(name: str) -> str:
    return f"{generation(name)}/events"


def output(name: str, index: int) -> str:
    return f"{generation(name)}/outputs/{index}"


def thumbnail(name: str, index: int) -> str:
    return f"{output(name, index)}/thumbnail"


def gallery_output(job: str, index: int) -> str:
    """An output found through its metadata record: works after the job is deleted."""
    return f"{PREFIX}/gallery/{quote(job, safe='')}/{index}"


def gallery_thumbnail(job: str, index: int) -> str:
    return f"{gallery_output(job, index)}/thumbnail"
