"""Issue 15, hostile input on the studio side: outputs, page headers, bodies, images (T5)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

GOOD = {"pool": "sdxl", "prompt": "a lighthouse at dusk"}
HTML = b"<!doctype html><html><script>fetch('/api/v1/me')</script></html>"
Studio = Any
Driver = Any


def image_bytes(size: tuple[int, int], fmt: str = "PNG", mode: str = "1") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, format=fmt)
    return out.getvalue()


async def job_with_output(http: Any, drive: Driver, data: bytes, content_type: str) -> str:
    name = str((await http.post("/api/v1/generations", json=GOOD)).json()["name"])
    await drive.succeed(name, data, content_type=content_type)
    return name


# ---------------------------------------------------------------- outputs


@pytest.mark.parametrize("content_type", ["text/html", "image/svg+xml", "image/png"])
async def test_an_html_output_is_never_served_as_a_page(
    studio: Studio, drive: Driver, content_type: str
) -> None:
    """A hostile host reports x.html (or lies that it is a PNG): it must not render in
    the studio's origin."""
    http = await studio(studio_auth="none")
    name = await job_with_output(http, drive, HTML, content_type)
    for disposition in ("inline", "attachment"):
        r = await http.get(
            f"/api/v1/generations/{name}/outputs/0", params={"disposition": disposition}
        )
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.headers["content-disposition"].startswith("attachment;")
        assert "sandbox" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.content == HTML


async def test_a_real_image_is_served_inline_when_asked(
    studio: Studio, drive: Driver, png: Any
) -> None:
    http = await studio(studio_auth="none")
    data = png()
    name = await job_with_output(http, drive, data, "text/html")  # the name lied, bytes rule
    r = await http.get(f"/api/v1/generations/{name}/outputs/0", params={"disposition": "inline"})
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"].startswith("inline;")
    assert "sandbox" in r.headers["content-security-policy"]
    assert r.content == data
    gallery = await http.get(
        f"/api/v1/gallery/{name}/0", params={"disposition": "inline"}
    )  # the gallery's download answers through the same code
    if gallery.status_code == 200:
        assert "sandbox" in gallery.headers["content-security-policy"]


# ---------------------------------------------------------------- the page


async def test_the_page_has_a_strict_csp_and_security_headers(studio: Studio) -> None:
    http = await studio(studio_auth="none")
    r = await http.get("/")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "cdn" not in r.text.lower()
    api = await http.get("/api/v1/me")
    assert api.headers["x-content-type-options"] == "nosniff"


async def test_docs_with_cdn_assets_are_not_served(studio: Studio) -> None:
    http = await studio(studio_auth="none")
    for path in ("/docs", "/redoc"):
        r = await http.get(path)
        assert "cdn.jsdelivr" not in r.text
        assert r.status_code == 404
    assert (await http.get("/openapi.json")).status_code == 200


async def test_metrics_are_not_answered_through_a_proxy(studio: Studio) -> None:
    http = await studio(studio_auth="none")
    assert (await http.get("/metrics")).status_code == 200  # Prometheus, direct
    via = await http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"})
    assert via.status_code == 404
    forwarded = await http.get("/metrics", headers={"Forwarded": "for=203.0.113.5"})
    assert forwarded.status_code == 404


# ---------------------------------------------------------------- request bodies


class Body:
    """A request body streamed in chunks, counting what the server pulled."""

    def __init__(self, total: int, chunk: int = 64 * 1024, prefix: bytes = b"") -> None:
        self.total, self.chunk, self.sent, self.prefix = total, chunk, 0, prefix

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.prefix:
            yield self.prefix
        while self.sent < self.total:
            self.sent += self.chunk
            yield b"a" * self.chunk


async def test_a_big_body_is_refused_before_it_is_read(studio: Studio) -> None:
    http = await studio(studio_auth="none")
    big = 20 * 1024 * 1024
    body = Body(big)
    r = await http.post(
        "/api/v1/generations",
        content=body.__aiter__(),
        headers={"Content-Type": "application/json", "Content-Length": str(big)},
    )
    assert r.status_code == 413
    assert body.sent <= 256 * 1024, body.sent
    part = (
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    )
    chunked = Body(big, prefix=part)  # no length: counted as it arrives
    r = await http.post(
        "/api/v1/uploads",
        content=chunked.__aiter__(),
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 413
    assert chunked.sent <= 12 * 1024 * 1024, chunked.sent


async def test_an_anonymous_upload_is_refused_before_it_is_read(studio: Studio) -> None:
    http = await studio(studio_auth="token")
    body = Body(8 * 1024 * 1024)
    r = await http.post(
        "/api/v1/uploads",
        content=body.__aiter__(),
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 401
    assert body.sent <= 64 * 1024, body.sent


# ---------------------------------------------------------------- images


async def test_an_upload_of_too_many_pixels_is_refused_from_its_header(studio: Studio) -> None:
    http = await studio(studio_auth="none")
    data = image_bytes((6000, 5000))  # 30 megapixels, a few KiB of PNG
    assert len(data) < 200_000
    r = await http.post("/api/v1/uploads", files={"file": ("big.png", data, "image/png")})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["type"] == "too_many_pixels"
    fine = image_bytes((4000, 3000), mode="RGB")  # 12 megapixels
    r = await http.post("/api/v1/uploads", files={"file": ("ok.png", fine, "image/png")})
    assert r.status_code == 201, r.text


async def test_thumbnails_of_big_outputs(studio: Studio, drive: Driver) -> None:
    http = await studio(studio_auth="none")
    jpeg = image_bytes((4800, 4000), fmt="JPEG", mode="RGB")  # 19 MP: draft() shrinks it
    name = await job_with_output(http, drive, jpeg, "image/jpeg")
    r = await http.get(f"/api/v1/generations/{name}/outputs/0/thumbnail")
    assert r.status_code == 200
    with Image.open(io.BytesIO(r.content)) as thumb:
        assert max(thumb.size) == 384
    huge = image_bytes((6000, 5000))
    name = await job_with_output(http, drive, huge, "image/png")
    r = await http.get(f"/api/v1/generations/{name}/outputs/0/thumbnail")
    assert r.status_code == 422
