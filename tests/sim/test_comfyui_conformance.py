"""The simulator in 0.3.64 mode answers as the real ComfyUI 0.3.64 did.

Every ``POST /prompt`` recorded from the real server (``tests/data/comfyui-0.3.64/
exchanges``) is replayed against ``start_comfyui(comfyui_version="0.3.64")`` and the
answers compared: status, error type/message/details, and ``node_errors`` (node ids
in order, class, dependent outputs, each error's type, message, details and the
``extra_info`` keys the real server sent). Plus the recorded GETs whose shape the
clients read (``/system_stats``, ``/models``, ``/object_info/KSampler``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from warmpool.sim.clock import ManualClock
from warmpool.sim.comfyui import ComfyServer, start_comfyui

DATA = Path(__file__).parents[1] / "data" / "comfyui-0.3.64" / "exchanges"
GARBAGE = "rec_fixture_garbage.safetensors"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


PROMPTS = [
    *sorted(p.name for p in DATA.glob("01-validation-*.json")),
    "08-loadimage-missing-file-refused.json",
    "08-loadimage-subfolder-upload-accepted.json",
    "09-post-prompt-client-chosen-prompt-id.json",
]


@pytest.fixture
async def legacy() -> AsyncIterator[ComfyServer]:
    server = await start_comfyui(token=None, clock=ManualClock(), comfyui_version="0.3.64",
                                 models={}, step_seconds=0, load_seconds=0,
                                 node_seconds=0)  # fmt: skip
    try:
        yield server
    finally:
        await server.stop()


def _shape(node_errors: dict[str, Any]) -> list[Any]:
    return [
        (node_id, entry["class_type"], entry["dependent_outputs"],
         [(e["type"], e["message"], e["details"], sorted(e["extra_info"]))
          for e in entry["errors"]])
        for node_id, entry in node_errors.items()
    ]  # fmt: skip


@pytest.mark.parametrize("name", PROMPTS, ids=lambda n: n.removesuffix(".json"))
async def test_post_prompt_answers_as_recorded(legacy: ComfyServer, name: str) -> None:
    exchange = load(name)
    body = exchange["request"]["body"]
    if GARBAGE in json.dumps(body) and "not-installed" not in name:
        legacy.add_model("checkpoints", GARBAGE)
    for node in (body.get("prompt") or {}).values():
        image = node.get("inputs", {}).get("image") if isinstance(node, dict) else None
        if isinstance(image, str) and "no-such" not in image:
            path = legacy.root / "input" / image
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((DATA.parent.parent / "pixel.png").read_bytes())
    want = exchange["response"]
    async with httpx.AsyncClient(base_url=legacy.url) as http:
        got = await http.post("/prompt", json=body)
    assert got.status_code == want["status"]
    answer, expected = got.json(), want["body"]
    if want["status"] == 200:
        assert set(answer) == set(expected)
        if "prompt_id" in body:
            assert answer["prompt_id"] == body["prompt_id"]  # not a UUID, kept as is
    else:
        assert answer["error"] == expected["error"]
    assert _shape(answer["node_errors"]) == _shape(expected["node_errors"])


async def test_unknown_class_type_is_an_invalid_prompt_in_0364_only() -> None:
    """0.38 names the missing node type in its own error; 0.3.64 says it "does not exist"."""
    graph = load("01-validation-unknown-class-type.json")["request"]["body"]
    answers = {}
    for version in ("0.3.64", "0.38.1"):
        server = await start_comfyui(token=None, clock=ManualClock(), comfyui_version=version)
        try:
            async with httpx.AsyncClient(base_url=server.url) as http:
                answers[version] = (await http.post("/prompt", json=graph)).json()["error"]
        finally:
            await server.stop()
    assert answers["0.3.64"]["type"] == "invalid_prompt"
    assert answers["0.38.1"]["type"] == "missing_node_type"


async def test_system_stats_models_and_catalogue_have_the_recorded_shape(
    legacy: ComfyServer,
) -> None:
    async with httpx.AsyncClient(base_url=legacy.url) as http:
        stats = (await http.get("/system_stats")).json()
        folders = (await http.get("/models")).json()
        ksampler = (await http.get("/object_info/KSampler")).json()
        save = (await http.get("/object_info/SaveImage")).json()
        unknown = (await http.get("/object_info/NoSuchNode")).json()
    recorded = load("07-get-system-stats.json")["response"]["body"]
    assert set(stats["system"]) == set(recorded["system"])
    assert set(stats["devices"][0]) == set(recorded["devices"][0])
    assert stats["system"]["comfyui_version"] == "0.3.64"
    assert stats["devices"][0]["type"] == "cuda"
    assert folders == load("07-get-models.json")["response"]["body"]
    assert ksampler == load("07-get-object-info-ksampler.json")["response"]["body"]
    samplers = ksampler["KSampler"]["input"]["required"]["sampler_name"][0]
    assert isinstance(samplers, list) and len(samplers) == 42  # plain-list COMBO
    assert save["SaveImage"]["output"] == []
    assert unknown == {}


async def test_installed_models_fill_the_recorded_catalogue(legacy: ComfyServer) -> None:
    legacy.add_model("diffusion_models", "wan2.2_ti2v_5B_fp16.safetensors")
    legacy.add_model("text_encoders", "umt5_xxl_fp8_e4m3fn_scaled.safetensors")
    async with httpx.AsyncClient(base_url=legacy.url) as http:
        info = (await http.get("/object_info")).json()
    assert len(info) == 478
    assert info["UNETLoader"]["input"]["required"]["unet_name"][0] == [
        "wan2.2_ti2v_5B_fp16.safetensors"
    ]
    assert info["CLIPLoader"]["input"]["required"]["clip_name"][0] == [
        "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
    ]
    assert "pixel_space" in info["VAELoader"]["input"]["required"]["vae_name"][0]


@pytest.mark.parametrize("version", ["0.3.64", "0.38.1"])
@pytest.mark.parametrize(("bad_latent", "expected"), [(False, ["1", "4"]), (True, ["1", "2", "4"])])
async def test_node_errors_list_the_most_upstream_node_first(
    version: str, bad_latent: bool, expected: list[str]
) -> None:
    """Failing nodes on one chain: upstream nodes before the sampler that reads them.
    A real ComfyUI 0.3.64 on CPU answered these two graphs ``['1', '4']`` and
    ``['1', '2', '4']``."""
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "missing.ckpt"}},
        "2": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "x", "clip": ["1", 1]}},
        "4": {"class_type": "KSampler", "inputs": {
            "seed": 1, "steps": 0, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["1", 0], "positive": ["3", 0], "negative": ["3", 0],
            "latent_image": ["2", 0]}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "x"}},
    }  # fmt: skip
    if bad_latent:
        graph["2"]["inputs"]["width"] = 0
    server = await start_comfyui(token=None, clock=ManualClock(), comfyui_version=version)
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            answer = (await http.post("/prompt", json={"prompt": graph})).json()
    finally:
        await server.stop()
    assert list(answer["node_errors"]) == expected


def test_the_command_line_chooses_the_version() -> None:
    from warmpool.sim.cli import build_parser

    args = build_parser().parse_args(["comfyui", "--comfy-version", "0.3.64"])
    assert args.comfy_version == "0.3.64"
    assert build_parser().parse_args(["comfyui"]).comfy_version.startswith("0.38")
