"""Share links (T5): signed, expiring, revocable; the public page shows that one output
or album to anyone, without signing in, and nothing else. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from gallerydata import bearer, make_tokens, put_output
from recordsdb import pg_server, records_url  # noqa: F401  (fixtures)
from sqlalchemy import update

from warmpool.api.records.tables import ShareLink
from warmpool.operator.adapters import artifacts, kube

Studio = Any


def anonymous(http: httpx.AsyncClient) -> httpx.AsyncClient:
    """A second client on the same app with no credentials at all."""
    return httpx.AsyncClient(transport=http._transport, base_url=str(http.base_url))


async def test_a_link_shows_one_output_to_anyone_until_revoked(
    studio: Studio,
    store: artifacts.ArtifactStore,
    png: Any,
    kube_client: kube.KubeClient,
    records_url: str,  # noqa: F811
) -> None:
    await make_tokens(kube_client)
    http = await studio(studio_auth="token", studio_records_url=records_url)
    a = bearer("ada")
    data = png(color="teal")
    await put_output(store, "gen-ada", 0, data, owner="ada", prompt="a teal sea")
    await put_output(store, "gen-ada", 1, png(color="red"), owner="ada", prompt="a teal sea")
    r = await http.post("/api/v1/shares", json={"job": "gen-ada", "index": 0}, headers=a)
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["kind"] == "output" and link["url"].startswith("/s/") and not link["revoked"]
    token = link["url"].removeprefix("/s/")
    assert link["id"] not in token  # the id travels signed, not in the clear

    async with anonymous(http) as anon:
        assert (await anon.get("/api/v1/gallery")).status_code == 401
        page = await anon.get(link["url"])
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "<script" in page.text and "share.js" in page.text
        shared = await anon.get(f"/api/v1/shared/{token}")
        assert shared.status_code == 200, shared.text
        assert shared.headers["cache-control"] == "no-store"
        body = shared.json()
        assert body["kind"] == "output" and len(body["items"]) == 1
        assert "owner" not in body["items"][0] and "job" not in body["items"][0]
        assert "ada" not in shared.text and "gen-ada" not in shared.text
        got = await anon.get(body["items"][0]["url"])
        assert got.status_code == 200 and got.content == data
        assert (await anon.get(body["items"][0]["thumbnailUrl"])).status_code == 200
        assert (await anon.get(f"/api/v1/shared/{token}/1")).status_code == 404  # not shared
        tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        assert (await anon.get(f"/api/v1/shared/{tampered}")).status_code == 404
        # nobody else revokes it
        assert (
            await http.delete(f"/api/v1/shares/{link['id']}", headers=bearer("bob"))
        ).status_code == 404
        assert (await anon.delete(f"/api/v1/shares/{link['id']}")).status_code == 401
        assert (await anon.get(f"/api/v1/shared/{token}")).status_code == 200

        assert (await http.delete(f"/api/v1/shares/{link['id']}", headers=a)).status_code == 204
        for path in (f"/api/v1/shared/{token}", f"/api/v1/shared/{token}/0",
                     f"/api/v1/shared/{token}/0/thumbnail"):  # fmt: skip
            assert (await anon.get(path)).status_code == 404, path
    mine = (await http.get("/api/v1/shares", headers=a)).json()
    assert [(s["id"], s["revoked"]) for s in mine] == [(link["id"], True)]
    # The same link keeps its URL: the list shows the one that was handed out (a
    # time-stamped signature made a new token on every listing).
    assert mine[0]["url"] == link["url"]
    assert (await http.get("/api/v1/shares", headers=bearer("bob"))).json() == []


async def test_a_link_stops_at_its_expiry_and_with_its_output(
    studio: Studio,
    store: artifacts.ArtifactStore,
    png: Any,
    records_url: str,  # noqa: F811
) -> None:
    http = await studio(studio_records_url=records_url, studio_share_max_days=2)
    await put_output(store, "gen-a", 0, png())
    long = await http.post("/api/v1/shares", json={"job": "gen-a", "index": 0,
                                                   "expiresInHours": 24 * 30})  # fmt: skip
    expires = datetime.fromisoformat(long.json()["expires"].replace("Z", "+00:00"))
    assert expires - datetime.now(UTC) <= timedelta(days=2)  # capped at the longest
    token = long.json()["url"].removeprefix("/s/")
    assert (await http.get(f"/api/v1/shared/{token}")).status_code == 200
    db = http.app.state.records.db  # type: ignore[attr-defined]
    async with db.session() as s:
        past = datetime.now(UTC) - timedelta(minutes=1)
        await s.execute(update(ShareLink).values(expires_at=past))
    assert (await http.get(f"/api/v1/shared/{token}")).status_code == 404

    other = (await http.post("/api/v1/shares", json={"job": "gen-a", "index": 0})).json()
    token = other["url"].removeprefix("/s/")
    assert (await http.get(f"/api/v1/shared/{token}")).status_code == 200
    assert (await http.delete("/api/v1/gallery/gen-a/0")).status_code == 204
    assert (await http.get(f"/api/v1/shared/{token}")).status_code == 404
    assert (await http.get("/api/v1/shares")).json() == []  # its links went with it


async def test_an_album_link_shows_the_album_and_nothing_else(
    studio: Studio, store: artifacts.ArtifactStore, png: Any
) -> None:
    http = await studio()
    for job in ("gen-a", "gen-b", "gen-c"):
        await put_output(store, job, 0, png(), prompt=f"prompt of {job}")
    album = (await http.post("/api/v1/albums", json={"name": "Best"})).json()["id"]
    for job in ("gen-c", "gen-a"):
        await http.post(f"/api/v1/albums/{album}/items", json={"job": job, "index": 0})
    link = (await http.post("/api/v1/shares", json={"album": album})).json()
    assert link["kind"] == "album"
    token = link["url"].removeprefix("/s/")
    body = (await http.get(f"/api/v1/shared/{token}")).json()
    assert body["title"] == "Best"
    assert [i["prompt"] for i in body["items"]] == ["prompt of gen-c", "prompt of gen-a"]
    assert (await http.get(f"/api/v1/shared/{token}/2")).status_code == 404
    assert (await http.delete(f"/api/v1/albums/{album}")).status_code == 204
    assert (await http.get(f"/api/v1/shared/{token}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body"]),
        ({"job": "gen-a"}, ["body"]),
        ({"job": "gen-a", "index": 0, "album": 1}, ["body"]),
        ({"job": "gen-zzz", "index": 0}, ["body", "job"]),
        ({"album": 999}, ["body", "album"]),
        ({"job": "gen-a", "index": 0, "expiresInHours": 0}, ["body", "expiresInHours"]),
        ({"job": "Bad/Name", "index": 0}, ["body", "job"]),
    ],
    ids=["nothing", "no-index", "both", "not-mine", "no-album", "zero-hours", "bad-name"],
)
async def test_bad_share_requests_name_the_field(
    studio: Studio, store: artifacts.ArtifactStore, png: Any, body: dict[str, Any], loc: list[Any]
) -> None:
    http = await studio()
    await put_output(store, "gen-a", 0, png())
    await put_output(store, "gen-zzz", 0, png(), owner="someone-else")
    r = await http.post("/api/v1/shares", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc


async def test_revoking_needs_a_well_formed_id(studio: Studio) -> None:
    http = await studio()
    assert (await http.delete("/api/v1/shares/not-an-id")).status_code == 422
    assert (await http.delete("/api/v1/shares/" + "0" * 32)).status_code == 404
    assert (await http.get("/api/v1/shared/short")).status_code == 422
