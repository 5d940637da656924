"""The ComfyUI simulator speaks ComfyUI's wire protocol (contracts/comfyui-api.md)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image
from websockets.asyncio.client import ClientConnection

from warmpool.sim.clock import ManualClock
from warmpool.sim.comfyui import ComfyServer, start_comfyui

TOKEN = "comfy-token-SECRET-0123456789"


def txt2img(seed: int = 42, *, steps: int = 5, text: str = "a lighthouse", size: int = 512,
            batch: int = 1, save: str = "SaveImage") -> dict[str, Any]:  # fmt: skip
    graph: dict[str, Any] = {
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": size, "height": size, "batch_size": batch}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": steps, "cfg": 7.0, "sampler_name": "euler",
            "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0],
            "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage",
              "inputs": {"filename_prefix": "warmpool/ns/job", "images": ["8", 0]}},
    }  # fmt: skip
    if save == "SaveAnimatedWEBP":
        graph["9"] = {"class_type": "SaveAnimatedWEBP", "inputs": {
            "images": ["8", 0], "filename_prefix": "warmpool/ns/vid", "fps": 8.0,
            "lossless": False, "quality": 80, "method": "default"}}  # fmt: skip
    return graph


@asynccontextmanager
async def socket(server: ComfyServer, client_id: str) -> AsyncIterator[ClientConnection]:
    url = server.url.replace("http", "ws") + f"/ws?clientId={client_id}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "status"
        assert first["data"]["sid"] == client_id
        yield ws


async def events_until_end(ws: ClientConnection, prompt_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while True:
            raw = await ws.recv()
            if isinstance(raw, bytes):
                continue
            message = json.loads(raw)
            events.append(message)
            data = message["data"]
            end = message["type"] == "executing" and data["node"] is None
            if end and data.get("prompt_id") == prompt_id:
                return events


# ---------------------------------------------------------------- auth and routes


@pytest.mark.parametrize(
    ("headers", "params", "status"),
    [
        pytest.param({}, {}, 401, id="no-token"),
        pytest.param({"Authorization": "Bearer wrong"}, {}, 401, id="wrong-token"),
        pytest.param({"Authorization": f"Bearer {TOKEN}"}, {}, 200, id="bearer"),
        pytest.param({}, {"token": TOKEN}, 200, id="query-token-like-the-open-button"),
    ],
)
async def test_token_is_required(
    comfy_sim: ComfyServer, headers: dict[str, str], params: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient(base_url=comfy_sim.url) as http:
        response = await http.get("/system_stats", headers=headers, params=params)
    assert response.status_code == status


async def test_query_token_sets_a_cookie_for_the_browser(comfy_sim: ComfyServer) -> None:
    async with httpx.AsyncClient(base_url=comfy_sim.url) as http:
        assert (await http.get("/", params={"token": TOKEN})).status_code == 200
        assert (await http.get("/api/system_stats")).status_code == 200


async def test_routes_answer_bare_and_under_api(comfy_http: httpx.AsyncClient) -> None:
    for path in ("/system_stats", "/prompt", "/queue", "/models/checkpoints", "/embeddings"):
        bare, api = await comfy_http.get(path), await comfy_http.get("/api" + path)
        assert bare.status_code == api.status_code == 200, path
        assert bare.json() == api.json()


async def test_system_stats_reports_a_device(comfy_http: httpx.AsyncClient) -> None:
    stats = (await comfy_http.get("/system_stats")).json()
    assert stats["system"]["comfyui_version"] == "0.38.1"
    device = stats["devices"][0]
    assert device["type"] == "cuda"
    assert "RTX 4090" in device["name"]
    assert device["vram_free"] <= device["vram_total"]


async def test_object_info_has_real_node_shapes(comfy_http: httpx.AsyncClient) -> None:
    info = (await comfy_http.get("/object_info")).json()
    ksampler = info["KSampler"]
    assert ksampler["output"] == ["LATENT"]
    assert ksampler["input"]["required"]["steps"][1]["min"] == 1
    assert "euler" in ksampler["input"]["required"]["sampler_name"][0]
    assert ksampler["input_order"]["required"][0] == "model"
    assert info["SaveImage"]["output_node"] is True
    assert info["SaveImage"]["input"]["hidden"] == {
        "prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}  # fmt: skip
    assert info["SaveAnimatedWEBP"]["input"]["required"]["method"][0] == "COMBO"
    ckpts = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    assert ckpts == sorted(ckpts)
    assert "sd_xl_base_1.0.safetensors" in ckpts
    one = (await comfy_http.get("/object_info/KSampler")).json()
    assert one == {"KSampler": ksampler}
    assert (await comfy_http.get("/object_info/NoSuchNode")).json() == {}


async def test_model_lists_come_from_the_configured_inventory() -> None:
    models = {"checkpoints": ["b.safetensors", "a.ckpt", "notes.txt"]}
    server = await start_comfyui(token=None, clock=ManualClock(), models=models)
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/models/checkpoints")).json() == ["a.ckpt", "b.safetensors"]
            assert (await http.get("/models/loras")).json() == []
            assert (await http.get("/models/nope")).status_code == 404
    finally:
        await server.stop()


# ---------------------------------------------------------------- validation


def _broken(change: str) -> dict[str, Any]:
    g = txt2img()
    if change == "no-output":
        del g["9"]
    elif change == "unknown-class":
        g["7"]["class_type"] = "NoSuchNode"
    elif change == "missing-input":
        del g["3"]["inputs"]["seed"]
    elif change == "not-in-list":
        g["4"]["inputs"]["ckpt_name"] = "missing.safetensors"
    elif change == "below-min":
        g["3"]["inputs"]["steps"] = 0
    elif change == "above-max":
        g["3"]["inputs"]["cfg"] = 101.0
    elif change == "wrong-link-type":
        g["3"]["inputs"]["model"] = ["6", 0]
    return g


@pytest.mark.parametrize(
    ("change", "error_type", "node_type", "node_id"),
    [
        pytest.param("no-output", "prompt_no_outputs", None, None, id="prompt_no_outputs"),
        pytest.param("unknown-class", "missing_node_type", None, None, id="missing_node_type"),
        pytest.param("missing-input", "required_input_missing", "KSampler", "3", id="missing"),
        pytest.param("not-in-list", "value_not_in_list", "CheckpointLoaderSimple", "4", id="list"),
        pytest.param("below-min", "value_smaller_than_min", "KSampler", "3", id="min"),
        pytest.param("above-max", "value_bigger_than_max", "KSampler", "3", id="max"),
        pytest.param("wrong-link-type", "return_type_mismatch", "KSampler", "3", id="link-type"),
    ],
)
async def test_invalid_graphs_get_comfyui_error_json(
    comfy_sim: ComfyServer,
    comfy_http: httpx.AsyncClient,
    change: str,
    error_type: str,
    node_type: str | None,
    node_id: str | None,
) -> None:
    response = await comfy_http.post("/prompt", json={"prompt": _broken(change)})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error", "node_errors"}
    if node_id is None:
        assert body["error"]["type"] == error_type
        assert body["node_errors"] == {}
    else:
        assert body["error"]["type"] == "prompt_outputs_failed_validation"
        entry = body["node_errors"][node_id]
        assert entry["class_type"] == node_type
        assert entry["dependent_outputs"] == ["9"]
        assert [e["type"] for e in entry["errors"]] == [error_type]
        assert "input_name" in entry["errors"][0]["extra_info"]
    assert comfy_sim.state()["prompts_seen"] == 0


async def test_values_are_coerced_like_comfyui(comfy_http: httpx.AsyncClient) -> None:
    g = txt2img()
    g["3"]["inputs"]["steps"] = "3"
    response = await comfy_http.post("/prompt", json={"prompt": g})
    assert response.status_code == 200
    pid = response.json()["prompt_id"]
    queue = (await comfy_http.get("/queue")).json()
    items = queue["queue_running"] + queue["queue_pending"]
    assert any(i[1] == pid and i[2]["3"]["inputs"]["steps"] == 3 for i in items)


# ---------------------------------------------------------------- execution


async def test_a_prompt_runs_with_the_real_event_sequence(
    comfy_sim: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    async with socket(comfy_sim, "client-1") as ws:
        response = await comfy_http.post(
            "/prompt", json={"prompt": txt2img(), "client_id": "client-1"}
        )
        pid = response.json()["prompt_id"]
        events = await events_until_end(ws, pid)
    kinds = [e["type"] for e in events if e["type"] != "progress_state"]
    assert kinds[:5] == ["status", "status", "execution_start", "execution_cached", "executing"]
    assert kinds[-4:] == ["executed", "execution_success", "status", "executing"]
    progress = [e["data"] for e in events if e["type"] == "progress"]
    assert [(p["value"], p["max"]) for p in progress] == [(i, 5) for i in range(1, 6)]
    executing = [e["data"]["node"] for e in events if e["type"] == "executing"]
    assert executing.index("4") < executing.index("3") < executing.index("8") < executing.index("9")
    history = (await comfy_http.get(f"/history/{pid}")).json()[pid]
    assert history["status"]["status_str"] == "success"
    [image] = history["outputs"]["9"]["images"]
    assert image == {"filename": "job_00001_.png", "subfolder": "warmpool/ns", "type": "output"}
    view = await comfy_http.get("/view", params=image)
    assert view.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(view.content))
    assert picture.size == (512, 512)
    colours = picture.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None
    assert len(colours) > 16
    assert json.loads(picture.info["prompt"])["3"]["inputs"]["seed"] == 42
    files = comfy_sim.state()["files"]
    assert files[0]["sha256"] == hashlib.sha256(view.content).hexdigest()
    assert (files[0]["name"], files[0]["subfolder"]) == ("job_00001_.png", "warmpool/ns")


async def test_an_identical_prompt_is_cached_and_writes_no_new_file(
    comfy_sim: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    async with socket(comfy_sim, "c") as ws:
        for _ in range(2):
            r = await comfy_http.post("/prompt", json={"prompt": txt2img(), "client_id": "c"})
            events = await events_until_end(ws, r.json()["prompt_id"])
    cached = next(e["data"]["nodes"] for e in events if e["type"] == "execution_cached")
    assert sorted(cached) == ["3", "4", "5", "6", "7", "8", "9"]
    assert not [e for e in events if e["type"] == "progress"]
    assert len(comfy_sim.state()["files"]) == 1


async def test_content_depends_on_seed_and_prompt(
    comfy_sim: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    async with socket(comfy_sim, "c") as ws:
        for graph in (txt2img(1), txt2img(2), txt2img(1, text="a cat")):
            r = await comfy_http.post("/prompt", json={"prompt": graph, "client_id": "c"})
            await events_until_end(ws, r.json()["prompt_id"])
    digests = [f["sha256"] for f in comfy_sim.state()["files"]]
    assert len(set(digests)) == 3


async def test_video_is_an_animated_webp(
    comfy_sim: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    graph = txt2img(batch=4, size=256, save="SaveAnimatedWEBP")
    async with socket(comfy_sim, "c") as ws:
        r = await comfy_http.post("/prompt", json={"prompt": graph, "client_id": "c"})
        pid = r.json()["prompt_id"]
        await events_until_end(ws, pid)
    outputs = (await comfy_http.get(f"/history/{pid}")).json()[pid]["outputs"]["9"]
    assert outputs["animated"] == [True]
    data = (await comfy_http.get("/view", params=outputs["images"][0])).content
    webp = Image.open(io.BytesIO(data))
    assert webp.format == "WEBP"
    assert webp.n_frames == 4
    assert webp.size == (256, 256)


async def test_upload_then_image_to_image(
    comfy_sim: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "red").save(buffer, format="PNG")
    files = {"image": ("ref.png", buffer.getvalue(), "image/png")}
    answer = (await comfy_http.post("/upload/image", files=files)).json()
    assert answer == {"name": "ref.png", "subfolder": "", "type": "input"}
    again = (await comfy_http.post("/upload/image", files=files)).json()
    assert again["name"] == "ref.png"  # same content: deduplicated
    g = txt2img()
    g["5"] = {"class_type": "LoadImage", "inputs": {"image": "ref.png"}}
    g["10"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["5", 0], "vae": ["4", 2]}}
    g["3"]["inputs"].update(latent_image=["10", 0], denoise=0.5)
    async with socket(comfy_sim, "c") as ws:
        r = await comfy_http.post("/prompt", json={"prompt": g, "client_id": "c"})
        pid = r.json()["prompt_id"]
        await events_until_end(ws, pid)
    image = (await comfy_http.get(f"/history/{pid}")).json()[pid]["outputs"]["9"]["images"][0]
    picture = Image.open(io.BytesIO((await comfy_http.get("/view", params=image)).content))
    assert picture.size == (300, 200)
    g["5"]["inputs"]["image"] = "nope.png"
    refused = (await comfy_http.post("/prompt", json={"prompt": g})).json()
    assert refused["node_errors"]["5"]["errors"][0]["type"] == "custom_validation_failed"


# ---------------------------------------------------------------- faults


async def test_out_of_memory_is_an_execution_error(
    comfy_sim: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    await comfy_http.post("/_sim/faults", json={"oom": {"node_type": "KSampler"}})
    async with socket(comfy_sim, "c") as ws:
        r = await comfy_http.post("/prompt", json={"prompt": txt2img(), "client_id": "c"})
        pid = r.json()["prompt_id"]
        events = await events_until_end(ws, pid)
    [error] = [e["data"] for e in events if e["type"] == "execution_error"]
    assert error["exception_type"] == "torch.OutOfMemoryError"
    assert "out of memory" in error["exception_message"]
    assert error["node_type"] == "KSampler"
    assert "execution_success" not in [e["type"] for e in events]
    history = (await comfy_http.get(f"/history/{pid}")).json()[pid]
    assert history["status"]["status_str"] == "error"


async def test_slow_start_answers_502_until_ready() -> None:
    clock = ManualClock()
    server = await start_comfyui(token=None, clock=clock)
    try:
        server.slow_start(30)
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/system_stats")).status_code == 502
            await clock.advance(31)
            assert (await http.get("/system_stats")).status_code == 200
    finally:
        await server.stop()


async def test_missing_model_fails_validation(
    comfy_sim: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    comfy_sim.remove_model("checkpoints", "sd_xl_base_1.0.safetensors")
    assert "sd_xl_base_1.0.safetensors" not in (await comfy_http.get("/models/checkpoints")).json()
    body = (await comfy_http.post("/prompt", json={"prompt": txt2img()})).json()
    assert body["node_errors"]["4"]["errors"][0]["type"] == "value_not_in_list"


async def test_crash_mid_job_drops_sockets_and_the_port(
    comfy_sim: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    comfy_sim.crash_mid_job(after_steps=2)
    async with socket(comfy_sim, "c") as ws:
        await comfy_http.post("/prompt", json={"prompt": txt2img(), "client_id": "c"})
        with pytest.raises(websockets.ConnectionClosed):  # noqa: PT012
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
    async with httpx.AsyncClient(base_url=comfy_sim.url) as fresh:
        with pytest.raises(httpx.ConnectError):
            await fresh.get("/system_stats")
    await comfy_sim.restart()
    async with httpx.AsyncClient(base_url=comfy_sim.url, headers=comfy_http.headers) as fresh:
        assert (await fresh.get("/history")).json() == {}


async def test_interrupt_stops_a_stalled_prompt(
    comfy_sim: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    comfy_sim.stall_progress(after_steps=2)
    async with socket(comfy_sim, "c") as ws:
        r = await comfy_http.post("/prompt", json={"prompt": txt2img(), "client_id": "c"})
        pid = r.json()["prompt_id"]
        async with asyncio.timeout(10):
            while json.loads(await ws.recv())["type"] != "progress":
                pass
        await comfy_http.post("/interrupt", json={"prompt_id": pid})
        events = await events_until_end(ws, pid)
    assert "execution_interrupted" in [e["type"] for e in events]
    state = (await comfy_http.get("/_sim/state")).json()
    assert state["interrupts_seen"] == 1
    assert state["requests"]["POST /interrupt"] == 1


async def test_flat_output_fault_saves_one_flat_colour_once(
    comfy_sim: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    await comfy_http.post("/_sim/faults", json={"flat_output": True})
    assert (await comfy_http.get("/_sim/state")).json()["faults"]["flat_output"] is True
    colours = []
    for seed in (1, 2):
        async with socket(comfy_sim, "c") as ws:
            r = await comfy_http.post("/prompt", json={"prompt": txt2img(seed), "client_id": "c"})
            pid = r.json()["prompt_id"]
            await events_until_end(ws, pid)
        out = (await comfy_http.get(f"/history/{pid}")).json()[pid]["outputs"]["9"]["images"][0]
        picture = Image.open(io.BytesIO((await comfy_http.get("/view", params=out)).content))
        colours.append(len(picture.convert("RGB").getcolors(maxcolors=4) or [None] * 5))
    assert colours[0] == 1 and colours[1] > 1  # the fault fires once
    assert (await comfy_http.get("/_sim/state")).json()["faults"]["flat_output"] is False


async def test_reset_forgets_counts_and_history(
    comfy_sim: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    await comfy_http.get("/system_stats")
    assert (await comfy_http.get("/_sim/state")).json()["requests"]["GET /system_stats"] == 1
    await comfy_http.post("/_sim/reset")
    assert (await comfy_http.get("/_sim/state")).json()["requests"] == {}


def test_builder_graph_copy_is_independent() -> None:
    """The helper must not share nested dicts between calls (tests mutate graphs)."""
    a, b = txt2img(), copy.deepcopy(txt2img())
    a["3"]["inputs"]["seed"] = 7
    assert b["3"]["inputs"]["seed"] == 42
