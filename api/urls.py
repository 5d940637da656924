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
