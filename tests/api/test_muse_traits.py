"""Structured muse attributes, variations and the create options that reach the spec (T5)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gallerydata import T0, put_output

from warmpool.operator.adapters import kube

NS = "default"
Studio = Any
ADA = {
    "displayName": "Ada",
    "age": 34,
    "traits": {"nationality": "Japanese", "occupation": "ship captain", "build": "athletic",
               "hairLength": "pixie", "hairColour": "silver", "eyeColour": "green",
               "fashion": "streetwear", "personality": ["calm", "witty"]},
    "style": "oil painting",
    "variations": [{"name": "beach", "outfit": "a linen sundress",
                    "scenario": "on a sunny beach", "style": "film photo"}],
}  # fmt: skip


async def test_pick_lists_are_served_in_camel_case(studio: Studio) -> None:
    http = await studio()
    lists = (await http.get("/api/v1/muses/traits")).json()
    assert len(lists["hairLength"]) == 7
    assert lists["hairLength"][0] == "pixie" and lists["hairLength"][-1] == "very long"
    for name in ("nationality", "ethnicity", "occupation", "faceShape", "eyeSize", "nails",
                 "personality", "skinTexture", "footwear"):  # fmt: skip
        assert lists[name], name


async def test_traits_and_a_variation_compose_the_prompt_sent(
    studio: Studio, kube_client: kube.KubeClient
) -> None:
    http = await studio()
    muse = (await http.post("/api/v1/muses", json=ADA)).json()
    assert muse["spec"]["traits"]["hairLength"] == "pixie"
    job = {"pool": "sdxl", "prompt": "portrait", "museRef": muse["name"]}
    plain = (await http.post("/api/v1/estimate", json=job)).json()["positive"]
    assert plain.startswith("portrait, Ada, 34 year old adult, Japanese, ship captain")
    assert "athletic build" in plain and "pixie silver hair" in plain
    assert "wearing streetwear clothes" in plain and plain.endswith("oil painting, calm, witty")
    r = await http.post("/api/v1/generations", json={**job, "variation": "beach"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["composedPrompt"] == out["estimate"]["positive"]
    sent = out["composedPrompt"]
    assert sent.startswith("portrait, on a sunny beach, Ada")
    assert "wearing a linen sundress" in sent and "streetwear" not in sent
    assert "film photo" in sent and "oil painting" not in sent
    again = (await http.get(f"/api/v1/generations/{out['name']}")).json()
    assert again["composedPrompt"] == sent
    assert again["model"] == "sd_xl_base_1.0.safetensors"
    obj = await kube_client.get(kube.GENERATIONJOBS, out["name"], NS)
    assert obj is not None and obj["spec"]["variation"] == "beach"


P = pytest.param
T, V = ["body", "traits"], ["body", "variations"]
INVALID = [
    P({"traits": {"occupation": "schoolgirl"}}, [*T, "occupation"], id="blocklist-trait"),
    P({"traits": {"personality": ["calm", "childlike"]}}, [*T, "personality", 1],
      id="blocklist-personality"),
    P({"traits": {"hairColour": "x" * 81}}, [*T, "hairColour"], id="long-trait"),
    P({"variations": [{"name": "a"}, {"name": "a"}]}, V, id="duplicate-variation"),
    P({"variations": [{"name": "Beach!"}]}, [*V, 0, "name"], id="bad-variation-name"),
    P({"variations": [{"name": "b", "scenario": "at a teen party"}]}, [*V, 0, "scenario"],
      id="blocklist-scenario"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "loc"), INVALID)
async def test_bad_traits_and_variations_name_the_field(
    studio: Studio, change: dict[str, Any], loc: list[Any]
) -> None:
    http = await studio()
    r = await http.post("/api/v1/muses", json={**ADA, **change})
    assert r.status_code == 422, r.text
    assert loc in [d["loc"][: len(loc)] for d in r.json()["detail"]], r.json()


async def test_a_job_names_only_an_existing_variation_of_its_muse(studio: Studio) -> None:
    http = await studio()
    name = (await http.post("/api/v1/muses", json=ADA)).json()["name"]
    job = {"pool": "sdxl", "prompt": "portrait", "museRef": name}
    unknown = await http.post("/api/v1/generations", json={**job, "variation": "moon"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "variation"]
    alone = await http.post("/api/v1/estimate", json={"pool": "sdxl", "prompt": "x",
                                                      "variation": "beach"})  # fmt: skip
    assert alone.status_code == 422


async def test_every_create_option_reaches_the_spec(
    studio: Studio, png: Any, kube_client: kube.KubeClient
) -> None:
    http = await studio()
    key = (await http.post("/api/v1/uploads", files={"file": ("a.png", png())})).json()["key"]
    body = {"pool": "sdxl", "prompt": "a cat", "sampler": "euler_ancestral",
            "scheduler": "karras", "lora": {"name": "detail.safetensors", "strength": 0.7},
            "referenceImage": key, "denoise": 0.45, "priority": 5, "seed": 42}  # fmt: skip
    r = await http.post("/api/v1/generations", json=body)
    assert r.status_code == 201, r.text
    spec = (await kube_client.get(kube.GENERATIONJOBS, r.json()["name"], NS))["spec"]  # type: ignore[index]
    for k, v in body.items():
        assert spec[k] == v, k
    video = {"pool": "sdxl", "prompt": "waves", "kind": "animation", "frames": 12, "fps": 12}
    r = await http.post("/api/v1/generations", json=video)
    assert r.status_code == 201, r.text
    bad = await http.post("/api/v1/generations", json={**body, "denoise": 1.5})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "denoise"]
    bad = await http.post("/api/v1/generations", json={**body, "priority": 101})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "priority"]


async def test_upload_previews_are_for_their_owner_only(studio: Studio, png: Any) -> None:
    http = await studio(studio_thumbnail_size=32)
    key = (await http.post("/api/v1/uploads", files={"file": ("a.png", png())})).json()["key"]
    r = await http.get("/api/v1/uploads/preview", params={"key": key})
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    other = key.rsplit("/", 1)[0] + "/" + "f" * 64 + ".png"  # mine in shape, never uploaded
    assert (await http.get("/api/v1/uploads/preview", params={"key": other})).status_code in (
        403,
        404,
    )
    assert (
        await http.get("/api/v1/uploads/preview", params={"key": "outputs/default/x/0.png"})
    ).status_code == 404
    assert (await http.get("/api/v1/uploads/preview", params={"key": "x"})).status_code == 422


@pytest.mark.parametrize(
    ("pool_status", "paused", "wait", "reason"),
    [
        pytest.param({"readyReplicas": 1, "replicas": 1}, False, 0.0, "machine is ready",
                     id="ready"),
        pytest.param({"readyReplicas": 2, "replicas": 2, "queuedJobs": 4}, False, "ahead/2",
                     "4 job(s) ahead", id="queue"),
        pytest.param({"replicas": 0}, False, "boot", "no machine is warm", id="cold"),
        pytest.param({"replicas": 1}, False, "boot", "a machine is starting", id="starting"),
        pytest.param({"readyReplicas": 1, "replicas": 1}, True, 0.0, "paused", id="paused"),
    ],
)  # fmt: skip
async def test_the_estimate_includes_the_wait_for_a_machine(
    studio: Studio,
    kube_client: kube.KubeClient,
    pool_status: dict[str, int],
    paused: bool,
    wait: float | str,
    reason: str,
) -> None:
    http = await studio(studio_boot_estimate_seconds=200)
    patched = await kube_client.patch(
        kube.GPUPOOLS, "sdxl", NS, {"status": pool_status}, subresource="status"
    )
    if paused:
        patched = await kube_client.patch(kube.GPUPOOLS, "sdxl", NS, {"spec": {"paused": True}})
    # The estimate reads the pool from the studio's shared watch: wait until it has the
    # last patch (else it answers from the pool as it was a moment ago).
    version = patched["metadata"]["resourceVersion"]
    pools = http.app.state.studio.pools  # type: ignore[attr-defined]

    def seen() -> bool:
        pool = pools.objects.get("sdxl") if pools is not None else None
        return pool is None or pool["metadata"]["resourceVersion"] == version

    if pools is not None:
        async with pools.changes() as changed, asyncio.timeout(10):
            while not seen():
                await changed.wait()
                changed.clear()
    est = (await http.post("/api/v1/estimate", json={"pool": "sdxl", "prompt": "a cat"})).json()
    run = est["seconds"]
    expected = {"boot": 200.0, "ahead/2": round(4 * run / 2, 1)}.get(str(wait), wait)
    assert est["waitSeconds"] == pytest.approx(expected)
    assert reason in est["waitReason"]


async def test_each_muse_s_history_comes_from_the_records(
    studio: Studio, store: Any, png: Any
) -> None:
    http = await studio()
    await put_output(store, "gen-1", 0, png(), muse="ada", created=T0)
    await put_output(store, "gen-2", 0, png(), muse="ada", created=T0.replace(hour=2))
    await put_output(store, "gen-2", 1, png(), muse="ada", created=T0.replace(hour=2))
    await put_output(store, "gen-3", 0, png(), muse="cy", created=T0)
    await put_output(store, "gen-4", 0, png(), created=T0)
    await put_output(store, "gen-5", 0, png(), muse="ada", owner="someone-else")
    history = (await http.get("/api/v1/muses/history")).json()
    assert set(history) == {"ada", "cy"}
    ada = history["ada"]
    assert (ada["generations"], ada["outputs"]) == (2, 3)
    assert (ada["latest"]["job"], ada["latest"]["index"]) == ("gen-2", 0)
    assert history["cy"]["generations"] == 1
