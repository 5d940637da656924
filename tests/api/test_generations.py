"""Generations: create, estimate, get, list, cancel and every 422 rule (T5)."""

from __future__ import annotations

from typing import Any

import pytest

from warmpool.api.auth import OWNER_LABEL
from warmpool.operator.adapters import kube

NS = "default"
Studio = Any
Driver = Any

GOOD = {"pool": "sdxl", "prompt": "a lighthouse at dusk"}


async def test_create_makes_an_owned_job_and_answers_the_estimate(
    studio: Studio, kube_client: kube.KubeClient
) -> None:
    http = await studio()
    r = await http.post("/api/v1/generations", json={**GOOD, "quality": "high", "tags": ["sea"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["phase"] == "Queued"
    assert body["owner"] == "local"
    assert body["estimate"]["pricePerHour"] == 0.6
    assert body["estimate"]["seconds"] > 0
    assert body["estimate"]["dollars"] == pytest.approx(body["estimate"]["seconds"] / 3600 * 0.6)
    obj = await kube_client.get(kube.GENERATIONJOBS, body["name"], NS)
    assert obj is not None
    assert obj["spec"]["owner"] == "local"
    assert obj["spec"]["quality"] == "high"
    assert obj["metadata"]["labels"][OWNER_LABEL] == "local"

    got = await http.get(f"/api/v1/generations/{body['name']}")
    assert got.status_code == 200
    assert got.json()["spec"]["prompt"] == GOOD["prompt"]


async def test_estimate_does_not_create(studio: Studio, kube_client: kube.KubeClient) -> None:
    http = await studio()
    low = await http.post("/api/v1/estimate", json={**GOOD, "quality": "low"})
    ultra = await http.post("/api/v1/estimate", json={**GOOD, "quality": "ultra"})
    assert low.status_code == ultra.status_code == 200
    assert ultra.json()["dollars"] > low.json()["dollars"] > 0
    assert await kube_client.list(kube.GENERATIONJOBS, NS) == []


async def test_estimate_composes_the_muse_prompt(studio: Studio) -> None:
    http = await studio()
    muse = {"displayName": "Ada", "age": 34, "style": "oil", "negativePrompt": "blurry"}
    name = (await http.post("/api/v1/muses", json=muse)).json()["name"]
    r = await http.post(
        "/api/v1/estimate", json={**GOOD, "museRef": name, "negativePrompt": "text"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["positive"].startswith("a lighthouse at dusk, Ada, 34 year old adult")
    assert r.json()["negative"] == "blurry, text"


async def test_list_is_newest_first_paginated_and_filtered(studio: Studio, drive: Driver) -> None:
    http = await studio()
    muse = (await http.post("/api/v1/muses", json={"displayName": "Bo", "age": 40})).json()
    names = []
    for i in range(5):
        extra: dict[str, Any] = {"museRef": muse["name"]} if i % 2 else {}
        r = await http.post("/api/v1/generations", json={**GOOD, "prompt": f"p{i}", **extra})
        names.append(r.json()["name"])
    await drive.set_status(names[0], {"phase": "Succeeded"})

    page = (await http.get("/api/v1/generations", params={"limit": 2})).json()
    assert [i["name"] for i in page["items"]] == names[::-1][:2]
    assert page["total"] == 5
    assert page["nextOffset"] == 2
    last = (await http.get("/api/v1/generations", params={"limit": 2, "offset": 4})).json()
    assert [i["name"] for i in last["items"]] == [names[0]]
    assert last["nextOffset"] is None

    done = (await http.get("/api/v1/generations", params={"phase": "Succeeded"})).json()
    assert [i["name"] for i in done["items"]] == [names[0]]
    by_muse = (await http.get("/api/v1/generations", params={"muse": muse["name"]})).json()
    assert [i["name"] for i in by_muse["items"]] == [names[3], names[1]]


async def test_cancel_deletes_the_job(studio: Studio, kube_client: kube.KubeClient) -> None:
    http = await studio()
    name = (await http.post("/api/v1/generations", json=GOOD)).json()["name"]
    r = await http.delete(f"/api/v1/generations/{name}")
    assert r.status_code == 204
    assert await kube_client.get(kube.GENERATIONJOBS, name, NS) is None
    assert (await http.get(f"/api/v1/generations/{name}")).status_code == 404
    assert (await http.delete(f"/api/v1/generations/{name}")).status_code == 404


async def test_model_defaults_from_the_muse_when_the_pool_has_it(studio: Studio) -> None:
    http = await studio()
    muse = {"displayName": "Cy", "age": 30, "preferredModel": "juggernaut.safetensors"}
    name = (await http.post("/api/v1/muses", json=muse)).json()["name"]
    r = await http.post("/api/v1/generations", json={**GOOD, "museRef": name})
    assert r.json()["spec"]["model"] == "juggernaut.safetensors"


INVALID = [
    pytest.param({"prompt": ""}, ["body", "prompt"], id="prompt-empty"),
    pytest.param({"prompt": "x" * 4001}, ["body", "prompt"], id="prompt-too-long"),
    pytest.param({"width": 1000}, ["body", "width"], id="width-not-multiple-of-16"),
    pytest.param({"width": 32}, ["body", "width"], id="width-too-small"),
    pytest.param({"height": 4112}, ["body", "height"], id="height-too-big"),
    pytest.param({"steps": 0}, ["body", "steps"], id="steps-zero"),
    pytest.param({"steps": 151}, ["body", "steps"], id="steps-too-many"),
    pytest.param({"cfg": 30.5}, ["body", "cfg"], id="cfg-too-high"),
    pytest.param({"cfg": -1}, ["body", "cfg"], id="cfg-negative"),
    pytest.param({"batchSize": 17}, ["body", "batchSize"], id="batch-too-big"),
    pytest.param({"batchSize": 0}, ["body", "batchSize"], id="batch-zero"),
    pytest.param({"kind": "video", "frames": 241}, ["body", "frames"], id="frames-too-many"),
    pytest.param({"frames": 8}, ["body"], id="frames-on-an-image"),
    pytest.param({"quality": "extreme"}, ["body", "quality"], id="unknown-quality"),
    pytest.param({"kind": "audio"}, ["body", "kind"], id="unknown-kind"),
    pytest.param({"model": "nope.safetensors"}, ["body", "model"], id="unknown-model"),
    pytest.param({"pool": "nope"}, ["body", "pool"], id="unknown-pool"),
    pytest.param({"museRef": "nobody"}, ["body", "museRef"], id="unknown-muse"),
    pytest.param(
        {"referenceImage": "outputs/x.png"}, ["body", "referenceImage"], id="foreign-reference"
    ),
    pytest.param(
        {"referenceImage": "uploads/local/../../secrets.png"},
        ["body", "referenceImage"],
        id="reference-traversal",
    ),
    pytest.param({"prompt": "a schoolgirl in a park"}, ["body", "prompt"], id="blocklist-term"),
    pytest.param({"prompt": "portrait, 15 year old"}, ["body", "prompt"], id="blocklist-age"),
    pytest.param({"unknownField": 1}, ["body", "unknownField"], id="unknown-field"),
]


@pytest.mark.parametrize(("change", "loc"), INVALID)
@pytest.mark.parametrize("route", ["/api/v1/generations", "/api/v1/estimate"])
async def test_invalid_requests_name_the_field(
    studio: Studio,
    kube_client: kube.KubeClient,
    route: str,
    change: dict[str, Any],
    loc: list[str],
) -> None:
    http = await studio()
    r = await http.post(route, json={**GOOD, **change})
    assert r.status_code == 422, r.text
    locs = [d["loc"][: len(loc)] for d in r.json()["detail"]]
    assert loc in locs, r.json()
    assert await kube_client.list(kube.GENERATIONJOBS, NS) == []


async def test_blocklist_message_is_clear(studio: Studio) -> None:
    http = await studio()
    r = await http.post("/api/v1/generations", json={**GOOD, "prompt": "two kids playing"})
    (detail,) = r.json()["detail"]
    assert "under 18" in detail["msg"]
    assert detail["type"] == "content_policy"


async def test_blocklist_is_configurable(studio: Studio) -> None:
    http = await studio(studio_blocklist=["dragon"])
    assert (
        await http.post("/api/v1/estimate", json={**GOOD, "prompt": "a dragon"})
    ).status_code == 422
    ok = await http.post("/api/v1/estimate", json={**GOOD, "prompt": "a kid"})
    assert ok.status_code == 200


async def test_unfinished_jobs_are_limited_per_user(studio: Studio, drive: Driver) -> None:
    http = await studio(studio_max_queued_jobs=2)
    first = (await http.post("/api/v1/generations", json=GOOD)).json()["name"]
    assert (await http.post("/api/v1/generations", json=GOOD)).status_code == 201
    refused = await http.post("/api/v1/generations", json=GOOD)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    await drive.set_status(first, {"phase": "Succeeded"})
    assert (await http.post("/api/v1/generations", json=GOOD)).status_code == 201
