"""The gallery read from the outputs' metadata records: it outlives the job objects."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from warmpool.operator.adapters import artifacts, kube

NS = "default"
GOOD = {"pool": "sdxl", "prompt": "a lighthouse at dusk"}
TOKENS = {
    "ada": "tok-ada-0123456789abcdef0123456789abcdef",
    "bob": "tok-bob-fedcba9876543210fedcba9876543210",
}
PROXY = ("10.0.0.7", 40000)
Studio = Any
Driver = Any
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


async def make_tokens(client: kube.KubeClient) -> None:
    data = {u: base64.b64encode(t.encode()).decode() for u, t in TOKENS.items()}
    secret = {"metadata": {"name": "warmpool-studio-tokens"}, "type": "Opaque", "data": data}
    await client.create(kube.SECRETS, secret, NS)


async def put_output(
    store: artifacts.ArtifactStore,
    job: str,
    index: int,
    data: bytes,
    *,
    owner: str = "local",
    namespace: str = NS,
    created: datetime = T0,
    **fields: Any,
) -> str:
    """An output and its record as the operator writes them (no job object at all)."""
    key = artifacts.output_key(namespace, job, index, "png")
    await store.put_bytes(key, data, content_type="image/png")
    record = artifacts.OutputRecord(
        key=key,
        namespace=namespace,
        job=job,
        index=index,
        owner=owner,
        created=created,
        content_type="image/png",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        width=64,
        height=48,
        **fields,
    )
    await store.put_record(record)
    return key


async def test_a_deleted_job_stays_in_the_gallery_and_downloads(
    studio: Studio, drive: Driver, png: Any, kube_client: kube.KubeClient
) -> None:
    http = await studio(studio_thumbnail_size=32)
    name = (await http.post("/api/v1/generations", json={**GOOD, "tags": ["sea"]})).json()["name"]
    data = png((640, 480), color="teal")
    await drive.succeed(name, data)
    live = await http.get(f"/api/v1/generations/{name}/outputs/0")
    assert live.status_code == 200 and live.content == data  # the job's own route, while live

    # the pool's TTL (or an admin) deletes the job; the artifacts and records stay
    await kube_client.delete(kube.GENERATIONJOBS, name, NS)
    assert await kube_client.get(kube.GENERATIONJOBS, name, NS) is None
    assert (await http.get(f"/api/v1/generations/{name}/outputs/0")).status_code == 404

    page = (await http.get("/api/v1/gallery")).json()
    assert page["total"] == 1
    [item] = page["items"]
    assert (item["job"], item["index"], item["tags"], item["kind"]) == (name, 0, ["sea"], "image")
    assert item["prompt"] == GOOD["prompt"] and item["owner"] == "local"
    got = await http.get(item["url"])
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"] == f'attachment; filename="{name}-0.png"'
    inline = await http.get(item["url"], params={"disposition": "inline"})
    assert inline.headers["content-disposition"].startswith("inline;")
    thumb = await http.get(item["thumbnailUrl"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.size == (32, 24)
    assert (await http.get(f"/api/v1/gallery/{name}/1")).status_code == 404


async def test_another_user_cannot_see_or_download_my_records(
    studio: Studio, store: artifacts.ArtifactStore, png: Any, kube_client: kube.KubeClient
) -> None:
    await make_tokens(kube_client)
    http = await studio(studio_auth="token")
    await put_output(store, "gen-bob-1", 0, png(), owner="bob")
    await put_output(store, "gen-ada-1", 0, png(color="red"), owner="ada")
    a, b = bearer("ada"), bearer("bob")

    mine = (await http.get("/api/v1/gallery", headers=a)).json()
    assert [i["job"] for i in mine["items"]] == ["gen-ada-1"]
    every = (await http.get("/api/v1/gallery", params={"all": "true"}, headers=a)).json()
    assert [i["job"] for i in every["items"]] == ["gen-ada-1"]  # not an admin: ignored
    for path in ("/api/v1/gallery/gen-bob-1/0", "/api/v1/gallery/gen-bob-1/0/thumbnail"):
        assert (await http.get(path, headers=a)).status_code == 404, path
        assert (await http.get(path, headers=b)).status_code == 200, path
    # the job routes know nothing of it either (there is no job object)
    assert (await http.get("/api/v1/generations/gen-bob-1/outputs/0", headers=b)).status_code == 404


async def test_admins_see_and_download_everyone_s_outputs(
    studio: Studio, store: artifacts.ArtifactStore, png: Any
) -> None:
    http = await studio(client_addr=PROXY, studio_auth="proxy", studio_proxy_cidrs=["10.0.0.0/24"])
    admin = {"X-Forwarded-User": "root", "X-Forwarded-Groups": "warmpool-admins"}
    await put_output(store, "gen-bob-1", 0, png(), owner="bob")
    assert (await http.get("/api/v1/gallery", headers=admin)).json()["total"] == 0
    every = (await http.get("/api/v1/gallery", params={"all": "true"}, headers=admin)).json()
    assert [(i["job"], i["owner"]) for i in every["items"]] == [("gen-bob-1", "bob")]
    assert (await http.get("/api/v1/gallery/gen-bob-1/0", headers=admin)).status_code == 200


async def test_filters_order_and_pagination_over_records(
    studio: Studio, store: artifacts.ArtifactStore, png: Any
) -> None:
    http = await studio()
    for n in range(5):  # gen-0 oldest ... gen-4 newest, two outputs each
        for i in range(2):
            await put_output(
                store,
                f"gen-{n}",
                i,
                png(color=("red", "blue")[i]),
                created=T0 + timedelta(minutes=n, seconds=i),
                muse="ada" if n % 2 else None,
                kind="video" if n == 4 else "image",
                tags=["sea"] if n < 2 else [],
            )
    everything = [(f"gen-{n}", i) for n in range(4, -1, -1) for i in range(2)]

    async def pages(**params: Any) -> list[tuple[str, int]]:
        seen: list[tuple[str, int]] = []
        offset: int | None = 0
        while offset is not None:
            page = (await http.get("/api/v1/gallery", params={**params, "offset": offset})).json()
            assert page["total"] >= len(seen)
            seen += [(i["job"], i["index"]) for i in page["items"]]
            offset = page["nextOffset"]
        return seen

    assert await pages(limit=3) == everything  # jobs newest first, a job's outputs by index
    assert await pages(limit=200) == everything
    assert await pages(limit=4, muse="ada") == [(f"gen-{n}", i) for n in (3, 1) for i in (0, 1)]
    assert await pages(limit=1, kind="video") == [("gen-4", 0), ("gen-4", 1)]
    assert await pages(kind="image", tag="sea") == [(f"gen-{n}", i) for n in (1, 0) for i in (0, 1)]
    last = (await http.get("/api/v1/gallery", params={"limit": 3, "offset": 9})).json()
    assert (last["total"], len(last["items"]), last["nextOffset"]) == (10, 1, None)
    assert (await http.get("/api/v1/gallery", params={"tag": "none"})).json()["items"] == []


async def test_records_are_trusted_only_where_they_belong(
    studio: Studio, store: artifacts.ArtifactStore, png: Any
) -> None:
    http = await studio()
    secret = await put_output(store, "gen-real", 0, png(), owner="someone-else")
    # a record next to gen-fake/0 that points at another job's output is refused
    fake = artifacts.OutputRecord(
        key=secret,
        namespace=NS,
        job="gen-fake",
        index=0,
        owner="local",
        content_type="image/png",
        size=1,
        sha256="0" * 64,
    )
    await store.put_json("records/default/gen-fake/0.png.json", fake.model_dump(by_alias=True))
    assert (await http.get("/api/v1/gallery/gen-fake/0")).status_code == 404
    # another namespace's records are not this studio's
    await put_output(store, "gen-other", 0, png(), namespace="elsewhere")
    assert (await http.get("/api/v1/gallery/gen-other/0")).status_code == 404
    assert (await http.get("/api/v1/gallery")).json()["items"] == []  # neither is listed
    # an output deleted under its record: 404, not 500
    gone = await put_output(store, "gen-gone", 0, png())
    await store.delete(gone)
    assert (await http.get("/api/v1/gallery/gen-gone/0")).status_code == 404
    # never a path from the client
    for path in (
        "/api/v1/gallery/..%2F..%2Fetc/0",
        "/api/v1/gallery/x/..%2F0",
        "/api/v1/gallery/UPPER/0",
        "/api/v1/gallery/gen-real/-1",
    ):
        assert (await http.get(path)).status_code in (404, 422), path
