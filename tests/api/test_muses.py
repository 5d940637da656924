"""Muses: create, read, replace, delete, list, export, import, and their 422 rules (T5)."""

from __future__ import annotations

from typing import Any

import pytest

from warmpool.api.auth import OWNER_LABEL
from warmpool.operator.adapters import kube

NS = "default"
Studio = Any
ADA = {
    "displayName": "Captain Ada",
    "age": 34,
    "appearance": {"presentation": "woman", "hair": "short silver hair"},
    "style": "painterly",
    "personality": "calm",
    "negativePrompt": "child, extra fingers",  # negative prompts are not blocklisted
    "tags": ["sea"],
}


async def test_crud(studio: Studio, kube_client: kube.KubeClient) -> None:
    http = await studio()
    r = await http.post("/api/v1/muses", json=ADA)
    assert r.status_code == 201, r.text
    muse = r.json()
    name = muse["name"]
    assert name.startswith("captain-ada-")
    assert muse["owner"] == "local"
    obj = await kube_client.get(kube.MUSES, name, NS)
    assert obj is not None
    assert obj["spec"]["owner"] == "local"
    assert obj["metadata"]["labels"][OWNER_LABEL] == "local"

    assert (await http.get(f"/api/v1/muses/{name}")).json()["spec"]["style"] == "painterly"
    changed = await http.put(f"/api/v1/muses/{name}", json={**ADA, "style": "noir"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["spec"]["style"] == "noir"
    listed = (await http.get("/api/v1/muses")).json()
    assert [m["name"] for m in listed["items"]] == [name]

    named = await http.post("/api/v1/muses", json={**ADA, "name": "ada"})
    assert named.json()["name"] == "ada"
    again = await http.post("/api/v1/muses", json={**ADA, "name": "ada"})
    assert again.status_code == 422
    assert again.json()["detail"][0]["loc"] == ["body", "name"]

    assert (await http.delete(f"/api/v1/muses/{name}")).status_code == 204
    assert (await http.get(f"/api/v1/muses/{name}")).status_code == 404
    assert (await http.put(f"/api/v1/muses/{name}", json=ADA)).status_code == 404


async def test_list_paginates(studio: Studio) -> None:
    http = await studio()
    for i in range(3):
        await http.post("/api/v1/muses", json={**ADA, "name": f"m{i}"})
    page = (await http.get("/api/v1/muses", params={"limit": 2})).json()
    assert page["total"] == 3
    assert len(page["items"]) == 2
    assert page["nextOffset"] == 2


INVALID = [
    pytest.param({"age": 17}, ["body", "age"], id="under-18"),
    pytest.param({"age": 151}, ["body", "age"], id="too-old"),
    pytest.param({"displayName": ""}, ["body", "displayName"], id="no-name"),
    pytest.param({"name": "Not A Label"}, ["body", "name"], id="bad-object-name"),
    pytest.param({"style": "teen idol look"}, ["body", "style"], id="blocklist-style"),
    pytest.param({"displayName": "Loli"}, ["body", "displayName"], id="blocklist-name"),
    pytest.param(
        {"appearance": {"body": "looks 12 years old"}},
        ["body", "appearance", "body"],
        id="blocklist-appearance-age",
    ),
    pytest.param(
        {"promptTemplate": "{prompt}, little girl"},
        ["body", "promptTemplate"],
        id="blocklist-template",
    ),
    pytest.param({"tags": ["ok", "kids"]}, ["body", "tags", 1], id="blocklist-tag"),
    pytest.param(
        {"referenceImages": ["../../etc/passwd"]},
        ["body", "referenceImages", 0],
        id="foreign-reference",
    ),
]


@pytest.mark.parametrize(("change", "loc"), INVALID)
async def test_invalid_muses_name_the_field(
    studio: Studio, kube_client: kube.KubeClient, change: dict[str, Any], loc: list[Any]
) -> None:
    http = await studio()
    r = await http.post("/api/v1/muses", json={**ADA, **change})
    assert r.status_code == 422, r.text
    assert loc in [d["loc"][: len(loc)] for d in r.json()["detail"]], r.json()
    assert await kube_client.list(kube.MUSES, NS) == []


async def test_export_then_import(studio: Studio) -> None:
    http = await studio()
    await http.post("/api/v1/muses", json={**ADA, "name": "ada"})
    exported = await http.get("/api/v1/muses/export")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    doc = exported.json()
    assert doc["kind"] == "MuseExport"
    assert doc["muses"][0]["name"] == "ada"
    assert "owner" not in doc["muses"][0]["spec"]

    r = await http.post("/api/v1/muses/import", json=doc)
    assert r.status_code == 201, r.text
    (fresh,) = r.json()["created"]
    assert fresh != "ada"  # the name was taken: a new one was made
    assert (await http.get(f"/api/v1/muses/{fresh}")).json()["spec"]["displayName"] == "Captain Ada"


async def test_import_checks_every_muse_before_creating(
    studio: Studio, kube_client: kube.KubeClient
) -> None:
    http = await studio()
    doc = {
        "apiVersion": "warmpool.dev/v1alpha1",
        "kind": "MuseExport",
        "muses": [
            {"name": "fine", "spec": ADA},
            {"name": "bad", "spec": {**ADA, "personality": "childlike"}},
        ],
    }
    r = await http.post("/api/v1/muses/import", json=doc)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "muses", 1, "spec", "personality"]
    assert await kube_client.list(kube.MUSES, NS) == []
    young = {**doc, "muses": [{"name": "young", "spec": {**ADA, "age": 16}}]}
    assert (await http.post("/api/v1/muses/import", json=young)).status_code == 422


async def test_the_owner_is_always_the_caller(studio: Studio) -> None:
    http = await studio()
    r = await http.post("/api/v1/muses", json={**ADA, "owner": "someone-else"})
    assert r.json()["owner"] == "local"
    job = {"pool": "sdxl", "prompt": "x", "owner": "someone-else"}
    assert (await http.post("/api/v1/generations", json=job)).json()["owner"] == "local"
