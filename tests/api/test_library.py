"""Uploads, gallery, downloads, thumbnails, pools, health and metrics (T5)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from warmpool.api.auth import owner_id
from warmpool.api.blocklist import Blocklist
from warmpool.operator.adapters import kube

NS = "default"
GOOD = {"pool": "sdxl", "prompt": "a lighthouse at dusk"}
Studio = Any
Driver = Any


async def test_upload_stores_under_a_server_made_key(studio: Studio, png: Any) -> None:
    http = await studio()
    data = png((40, 30))
    r = await http.post("/api/v1/uploads", files={"file": ("../../evil.png", data, "image/png")})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["key"].startswith(f"uploads/default/{owner_id('local')}/")
    assert "evil" not in body["key"]
    assert body == {**body, "contentType": "image/png", "size": len(data), "width": 40}
    assert await http.app.state.studio.uploads.store.get_bytes(body["key"]) == data


@pytest.mark.parametrize(("fmt", "content_type"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
async def test_upload_accepts_jpeg_and_webp(studio: Studio, fmt: str, content_type: str) -> None:
    http = await studio()
    out = io.BytesIO()
    Image.new("RGB", (20, 20), "teal").save(out, format=fmt)
    r = await http.post("/api/v1/uploads", files={"file": ("x", out.getvalue(), "text/plain")})
    assert r.status_code == 201, r.text
    assert r.json()["contentType"] == content_type  # by magic bytes, not the claimed type


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GIF89a" + b"\0" * 100, id="gif"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", id="svg"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, id="broken-png"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_upload_refuses_other_types(studio: Studio, data: bytes) -> None:
    http = await studio()
    r = await http.post("/api/v1/uploads", files={"file": ("x.png", data, "image/png")})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "file"]


async def test_upload_refuses_big_files(studio: Studio) -> None:
    http = await studio(studio_upload_max_bytes=2048)
    out = io.BytesIO()
    Image.effect_noise((128, 128), 64).save(out, format="PNG")
    assert len(out.getvalue()) > 2048
    r = await http.post("/api/v1/uploads", files={"file": ("x.png", out.getvalue(), "image/png")})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "too_large"


async def test_gallery_newest_first_with_filters(studio: Studio, drive: Driver, png: Any) -> None:
    http = await studio()
    muse = (await http.post("/api/v1/muses", json={"displayName": "Ada", "age": 30})).json()
    a = (await http.post("/api/v1/generations", json={**GOOD, "tags": ["sea"]})).json()["name"]
    b = (await http.post("/api/v1/generations", json={**GOOD, "museRef": muse["name"]})).json()[
        "name"
    ]
    c = (await http.post("/api/v1/generations", json=GOOD)).json()["name"]  # no outputs
    await drive.succeed(a, png(), png(color="red"))
    await drive.succeed(b, png())
    await drive.set_status(c, {"phase": "Running"})

    page = (await http.get("/api/v1/gallery")).json()
    assert [(i["job"], i["index"]) for i in page["items"]] == [(b, 0), (a, 0), (a, 1)]
    item = page["items"][0]
    assert item["url"] == f"/api/v1/gallery/{b}/0"
    assert item["thumbnailUrl"] == f"/api/v1/gallery/{b}/0/thumbnail"
    assert item["muse"] == muse["name"]

    by_muse = (await http.get("/api/v1/gallery", params={"muse": muse["name"]})).json()
    assert [i["job"] for i in by_muse["items"]] == [b]
    by_tag = (await http.get("/api/v1/gallery", params={"tag": "sea"})).json()
    assert [i["job"] for i in by_tag["items"]] == [a, a]
    videos = (await http.get("/api/v1/gallery", params={"kind": "video"})).json()
    assert videos["items"] == []
    paged = (await http.get("/api/v1/gallery", params={"limit": 1, "offset": 1})).json()
    assert [(i["job"], i["index"]) for i in paged["items"]] == [(a, 0)]
    assert paged["nextOffset"] == 2


async def test_download_streams_with_type_and_disposition(
    studio: Studio, drive: Driver, png: Any
) -> None:
    http = await studio()
    name = (await http.post("/api/v1/generations", json=GOOD)).json()["name"]
    data = png((64, 48))
    await drive.succeed(name, data)
    r = await http.get(f"/api/v1/generations/{name}/outputs/0")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == f'attachment; filename="{name}-0.png"'
    inline = await http.get(f"/api/v1/generations/{name}/outputs/0?disposition=inline")
    assert inline.headers["content-disposition"].startswith("inline;")
    assert (await http.get(f"/api/v1/generations/{name}/outputs/1")).status_code == 404
    assert (await http.get(f"/api/v1/generations/{name}/outputs/-1")).status_code == 422


async def test_output_paths_are_never_taken_from_the_client(studio: Studio) -> None:
    http = await studio()
    for path in (
        "/api/v1/generations/..%2F..%2Fetc/outputs/0",
        "/api/v1/generations/x/outputs/..%2F0",
        "/api/v1/generations/UPPER/outputs/0",
    ):
        assert (await http.get(path)).status_code in (404, 422), path


async def test_thumbnail_is_made_once_and_cached(studio: Studio, drive: Driver, png: Any) -> None:
    http = await studio(studio_thumbnail_size=32)
    name = (await http.post("/api/v1/generations", json=GOOD)).json()["name"]
    await drive.succeed(name, png((640, 480)))
    r = await http.get(f"/api/v1/generations/{name}/outputs/0/thumbnail")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(r.content)) as thumb:
        assert thumb.size == (32, 24)
    job = await drive.kube.get(kube.GENERATIONJOBS, name, NS)
    digest = job["status"]["outputs"][0]["sha256"]
    cached = await drive.store.get_bytes(f"thumbnails/{digest}-32.webp")
    assert cached == r.content
    again = await http.get(f"/api/v1/generations/{name}/outputs/0/thumbnail")
    assert again.content == r.content


async def test_pools_show_readiness_queue_and_price(
    studio: Studio, kube_client: kube.KubeClient
) -> None:
    http = await studio()
    status = {"replicas": 2, "readyReplicas": 1, "queuedJobs": 3, "pricePerHour": 0.9}
    await kube_client.patch(kube.GPUPOOLS, "sdxl", NS, {"status": status}, subresource="status")
    (pool,) = (await http.get("/api/v1/pools")).json()
    assert pool == {
        **pool,
        "name": "sdxl",
        "ready": True,
        "readyReplicas": 1,
        "queuedJobs": 3,
        "pricePerHour": 0.45,
    }
    assert "juggernaut.safetensors" in pool["models"]
    limited = await studio(studio_pools=["other"])
    assert (await limited.get("/api/v1/pools")).json() == []
    r = await limited.post("/api/v1/estimate", json=GOOD)
    assert r.status_code == 422


async def test_health_ready_and_metrics(studio: Studio) -> None:
    http = await studio()
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert (await http.get("/readyz")).status_code == 200
    await http.get("/api/v1/generations/nope")
    text = (await http.get("/metrics")).text
    assert 'warmpool_studio_requests_total{code="404",route="/api/v1/generations/{name}"}' in text
    assert "warmpool_studio_request_seconds_bucket" in text
    assert "warmpool_studio_sse_listeners" in text
    assert "nope" not in text


async def test_readyz_fails_when_kubernetes_is_unreachable(studio: Studio) -> None:
    http = await studio()
    client = http.app.state.studio.kube
    client.server = "http://127.0.0.1:9"  # nothing listens there
    r = await http.get("/readyz")
    assert r.status_code == 503


async def test_openapi_documents_the_api(studio: Studio) -> None:
    http = await studio()
    doc = (await http.get("/openapi.json")).json()
    for path in (
        "/api/v1/generations",
        "/api/v1/generations/{name}",
        "/api/v1/generations/{name}/events",
        "/api/v1/generations/{name}/outputs/{index}",
        "/api/v1/estimate",
        "/api/v1/muses",
        "/api/v1/muses/export",
        "/api/v1/muses/import",
        "/api/v1/uploads",
        "/api/v1/gallery",
        "/api/v1/pools",
    ):
        assert path in doc["paths"], path
    request = doc["components"]["schemas"]["GenerationRequest"]["properties"]
    assert "owner" not in request


async def test_the_page_is_served(studio: Studio) -> None:
    http = await studio()
    page = await http.get("/")
    assert page.status_code == 200
    assert '<script type="module" src="/app.js">' in page.text
    for asset in ("/app.js", "/api.js", "/muses.js", "/gallery.js", "/app.css"):
        assert (await http.get(asset)).status_code == 200, asset


@pytest.mark.parametrize(
    ("text", "blocked"),
    [
        ("a lighthouse at dusk", None),
        ("two kids playing", "kids"),
        ("a Teenager", "teenager"),
        ("school-girl uniform", "school girl"),  # the words matched, normalised
        ("a 16 year old", "16 year old"),
        ("a 16-year-old", "16-year-old"),
        ("she is 12yo", "12yo"),
        ("aged 9", "aged 9"),
        ("a 25 year old woman", None),
        ("kidney beans, skidding cars", None),
        ("1024 year old dragon", None),
        ("4 years ago", None),
    ],
)
def test_blocklist(text: str, blocked: str | None) -> None:
    found = Blocklist().check(text)
    assert (found.match if found else None) == blocked
