"""Curating the gallery (T5): deleting outputs and generations, favourites and ratings,
albums, filters, storage use and retention. The tests that write per-user rows run on
SQLite and on a real PostgreSQL (``records_url``)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from gallerydata import T0, bearer, make_tokens, put_output
from recordsdb import pg_server, records_url  # noqa: F401  (fixtures)

from warmpool.api import gallery_ops
from warmpool.operator.adapters import artifacts, kube

NS = "default"
Studio = Any


async def listed(http: Any, **params: Any) -> list[tuple[str, int]]:
    r = await http.get("/api/v1/gallery", params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return [(i["job"], i["index"]) for i in r.json()["items"]]


async def test_deleting_an_output_removes_file_thumbnail_record_and_listing(
    studio: Studio, store: artifacts.ArtifactStore, png: Any
) -> None:
    http = await studio(studio_thumbnail_size=32)
    data = png(color="teal")
    key = await put_output(store, "gen-a", 0, data)
    await put_output(store, "gen-a", 1, png(color="red"))
    assert (await http.get("/api/v1/gallery/gen-a/0/thumbnail")).status_code == 200
    thumb = f"thumbnails/{hashlib.sha256(data).hexdigest()}-32.webp"
    assert await store.head(thumb) is not None
    await http.put("/api/v1/gallery/gen-a/0/mark", json={"favourite": True})

    r = await http.delete("/api/v1/gallery/gen-a/0")
    assert r.status_code == 204, r.text
    for gone in (key, artifacts.record_key(key), thumb):
        assert await store.head(gone) is None, gone
    assert await listed(http) == [("gen-a", 1)]
    assert (await http.get("/api/v1/gallery/gen-a/0")).status_code == 404
    assert (await http.delete("/api/v1/gallery/gen-a/0")).status_code == 404
    assert await listed(http, favourite="true") == []  # its mark went with it


async def test_deleting_a_generation_removes_all_its_outputs(
    studio: Studio, store: artifacts.ArtifactStore, drive: Any, png: Any
) -> None:
    http = await studio()
    for i in range(2):
        await put_output(store, "gen-old", i, png())
    r = await http.delete("/api/v1/gallery/gen-old")
    assert r.status_code == 200 and r.json() == {"job": "gen-old", "outputs": 2}
    assert await store.list(f"outputs/{NS}/gen-old") == []
    assert (await http.delete("/api/v1/gallery/gen-old")).status_code == 404

    # DELETE /generations/{name} of a finished job takes its outputs along
    name = (await http.post("/api/v1/generations", json={"pool": "sdxl", "prompt": "x"})).json()
    await drive.succeed(name["name"], png(), png(color="red"))
    assert len(await listed(http)) == 2
    assert (await http.delete(f"/api/v1/generations/{name['name']}")).status_code == 204
    assert await listed(http) == []
    assert await store.list(f"outputs/{NS}/{name['name']}") == []


async def test_nobody_deletes_marks_or_lists_another_users_outputs(
    studio: Studio, store: artifacts.ArtifactStore, png: Any, kube_client: kube.KubeClient
) -> None:
    await make_tokens(kube_client)
    http = await studio(studio_auth="token")
    key = await put_output(store, "gen-bob", 0, png(), owner="bob")
    a = bearer("ada")
    assert (await http.delete("/api/v1/gallery/gen-bob/0", headers=a)).status_code == 404
    assert (await http.delete("/api/v1/gallery/gen-bob", headers=a)).status_code == 404
    mark = await http.put("/api/v1/gallery/gen-bob/0/mark", json={"rating": 5}, headers=a)
    assert mark.status_code == 404
    assert await store.head(key) is not None
    album = (await http.post("/api/v1/albums", json={"name": "mine"}, headers=a)).json()
    add = await http.post(
        f"/api/v1/albums/{album['id']}/items", json={"job": "gen-bob", "index": 0}, headers=a
    )
    assert add.status_code == 422 and add.json()["detail"][0]["loc"] == ["body", "job"]
    # bob cannot see, fill or delete ada's album
    b = bearer("bob")
    assert (await http.get("/api/v1/albums", headers=b)).json() == []
    body = {"job": "gen-bob", "index": 0}
    assert (
        await http.post(f"/api/v1/albums/{album['id']}/items", json=body, headers=b)
    ).status_code == 404
    assert (await http.delete(f"/api/v1/albums/{album['id']}", headers=b)).status_code == 404
    r = await http.get("/api/v1/gallery", params={"album": album["id"]}, headers=b)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "album"]
    assert (await http.delete("/api/v1/gallery/gen-bob/0", headers=b)).status_code == 204


async def test_favourites_ratings_and_albums_filter_the_gallery(
    studio: Studio,
    store: artifacts.ArtifactStore,
    png: Any,
    records_url: str,  # noqa: F811
) -> None:
    http = await studio(studio_records_url=records_url)
    for n in range(4):
        await put_output(store, f"gen-{n}", 0, png(), created=T0 + timedelta(minutes=n))
    ok = await http.put("/api/v1/gallery/gen-1/0/mark", json={"favourite": True, "rating": 4})
    assert ok.status_code == 200
    assert ok.json() == {"job": "gen-1", "index": 0, "favourite": True, "rating": 4}
    await http.put("/api/v1/gallery/gen-2/0/mark", json={"rating": 2})
    await http.put("/api/v1/gallery/gen-3/0/mark", json={"rating": 5})
    assert await listed(http, favourite="true") == [("gen-1", 0)]
    assert await listed(http, rating=4) == [("gen-3", 0), ("gen-1", 0)]
    cleared = await http.put("/api/v1/gallery/gen-3/0/mark", json={"rating": None})
    assert cleared.json()["rating"] is None
    assert await listed(http, rating=4) == [("gen-1", 0)]
    item = (await http.get("/api/v1/gallery", params={"favourite": "true"})).json()["items"][0]
    assert (item["favourite"], item["rating"]) == (True, 4)

    created = await http.post("/api/v1/albums", json={"name": "Seascapes"})
    assert created.status_code == 201
    album = created.json()["id"]
    dup = await http.post("/api/v1/albums", json={"name": "Seascapes"})
    assert dup.status_code == 422 and dup.json()["detail"][0]["loc"] == ["body", "name"]
    for job in ("gen-0", "gen-2", "gen-0"):
        r = await http.post(f"/api/v1/albums/{album}/items", json={"job": job, "index": 0})
        assert r.status_code == 201
    assert (await http.get("/api/v1/albums")).json()[0]["count"] == 2
    assert await listed(http, album=album) == [("gen-2", 0), ("gen-0", 0)]
    renamed = await http.patch(f"/api/v1/albums/{album}", json={"name": "Sea"})
    assert renamed.json()["name"] == "Sea"
    gone = await http.delete(f"/api/v1/albums/{album}/items/gen-2/0")
    assert gone.status_code == 204
    assert await listed(http, album=album) == [("gen-0", 0)]
    assert (await http.delete(f"/api/v1/albums/{album}")).status_code == 204
    assert (await http.get("/api/v1/albums")).json() == []
    assert len(await listed(http)) == 4  # the outputs stay


MARK = "/api/v1/gallery/gen-0/0/mark"
ITEMS = "/api/v1/albums/1/items"
INVALID = [
    pytest.param("put", MARK, {"rating": 6}, ["body", "rating"], id="rating-6"),
    pytest.param("put", MARK, {"rating": 0}, ["body", "rating"], id="rating-0"),
    pytest.param("put", MARK, {"favourite": "maybe"}, ["body", "favourite"], id="favourite-word"),
    pytest.param("put", MARK, {"stars": 3}, ["body", "stars"], id="unknown-field"),
    pytest.param("post", "/api/v1/albums", {"name": ""}, ["body", "name"], id="album-empty"),
    pytest.param("post", "/api/v1/albums", {"name": "x" * 101}, ["body", "name"], id="album-long"),
    pytest.param("post", "/api/v1/albums", {"name": "   "}, ["body", "name"], id="album-blank"),
    pytest.param("post", ITEMS, {"job": "../x", "index": 0}, ["body", "job"], id="item-path"),
    pytest.param("post", ITEMS, {"job": "gen-0", "index": -1}, ["body", "index"], id="item-index"),
]


@pytest.mark.parametrize(("method", "path", "body", "loc"), INVALID)
async def test_bad_requests_name_the_field(
    studio: Studio, store: artifacts.ArtifactStore, png: Any,
    method: str, path: str, body: dict[str, Any], loc: list[Any],
) -> None:  # fmt: skip
    http = await studio()
    await put_output(store, "gen-0", 0, png())
    await http.post("/api/v1/albums", json={"name": "a"})
    r = await http.request(method.upper(), path, json=body)
    assert r.status_code == 422, r.text
    assert loc in [d["loc"] for d in r.json()["detail"]], r.json()


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"rating": 9}, ["query", "rating"]),
        ({"since": "yesterday"}, ["query", "since"]),
        ({"q": "x" * 401}, ["query", "q"]),
        ({"kind": "gif"}, ["query", "kind"]),
        ({"album": 0}, ["query", "album"]),
    ],
    ids=["rating", "since", "q", "kind", "album"],
)
async def test_bad_filters_name_the_parameter(
    studio: Studio, params: dict[str, Any], loc: list[str]
) -> None:
    http = await studio()
    r = await http.get("/api/v1/gallery", params=params)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:2] == loc


async def test_several_tags_text_search_and_dates(
    studio: Studio, store: artifacts.ArtifactStore, png: Any
) -> None:
    http = await studio()
    await put_output(store, "gen-a", 0, png(), tags=["sea", "night"], prompt="A Lighthouse at dusk",
                     created=T0)  # fmt: skip
    await put_output(store, "gen-b", 0, png(), tags=["sea"], prompt="a harbour at dusk, boats",
                     created=T0 + timedelta(days=2))  # fmt: skip
    await put_output(store, "gen-c", 0, png(), tags=["night"], prompt="city lights",
                     created=T0 + timedelta(days=4), muse="ada", kind="video")  # fmt: skip
    assert await listed(http, tag=["sea", "night"]) == [("gen-a", 0)]
    assert await listed(http, tag=["sea"]) == [("gen-b", 0), ("gen-a", 0)]
    assert await listed(http, q="DUSK lighthouse") == [("gen-a", 0)]
    assert await listed(http, q="dusk") == [("gen-b", 0), ("gen-a", 0)]
    assert await listed(http, since="2030-01-02") == [("gen-c", 0), ("gen-b", 0)]
    assert await listed(http, until="2030-01-03") == [("gen-b", 0), ("gen-a", 0)]
    assert await listed(http, since="2030-01-02", until="2030-01-04") == [("gen-b", 0)]
    assert await listed(http, muse="ada", kind="video") == [("gen-c", 0)]
    assert await listed(http, muse="ada", kind="image") == []


async def test_storage_use_and_retention_keep_favourites_and_albums(
    studio: Studio,
    store: artifacts.ArtifactStore,
    png: Any,
    records_url: str,  # noqa: F811
) -> None:
    http = await studio(studio_records_url=records_url, studio_gallery_retention_days=30)
    now = T0 + timedelta(days=100)
    sizes = 0
    for n, age in enumerate((90, 80, 70, 5)):
        data = png(color=("red", "blue", "green", "white")[n])
        sizes += len(data)
        await put_output(store, f"gen-{n}", 0, data, created=now - timedelta(days=age))
    await put_output(store, "gen-other", 0, png(), owner="someone", created=T0)
    use = (await http.get("/api/v1/gallery/usage")).json()
    assert use == {"outputs": 4, "bytes": sizes, "retentionDays": 30}

    await http.put("/api/v1/gallery/gen-0/0/mark", json={"favourite": True})
    album = (await http.post("/api/v1/albums", json={"name": "keep"})).json()["id"]
    await http.post(f"/api/v1/albums/{album}/items", json={"job": "gen-1", "index": 0})
    await http.put("/api/v1/gallery/gen-2/0/mark", json={"rating": 5})  # a rating keeps nothing
    app = http.app  # type: ignore[attr-defined]
    removed = await gallery_ops.sweep(app.state.studio, app.state.curation, now=now)
    assert removed == 2  # gen-2 and someone's old one
    assert await listed(http) == [("gen-3", 0), ("gen-1", 0), ("gen-0", 0)]
    assert await store.list(f"outputs/{NS}/gen-2") == []
    assert await store.list(f"outputs/{NS}/gen-other") == []
    assert (await http.get("/api/v1/gallery/usage")).json()["outputs"] == 3
    unset = await studio()
    assert (await unset.get("/api/v1/gallery/usage")).json()["retentionDays"] is None
    app = unset.app  # type: ignore[attr-defined]
    assert await gallery_ops.sweep(app.state.studio, app.state.curation, now=now) == 0
