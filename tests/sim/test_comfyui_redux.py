"""Flux Redux graphs on the ComfyUI simulator: validated against the same catalogue, run.

The builder's graph (two references through ``CLIPVisionEncode`` → ``StyleModelApply``)
is accepted and executed by the simulator in both dialects when the machine holds the
style model and the vision encoder; each reference shapes the image. A machine without
the style model refuses the graph as the real ComfyUI 0.3.64 refuses a model that is not
installed (``01-validation-checkpoint-not-installed.json``): ``value_not_in_list`` on
the loader's input, ``not in []``.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from waiting import eventually

from warmpool.crds.generationjob import GenerationJobSpec
from warmpool.crds.stylemodel import StyleModelSpec
from warmpool.operator.decisions import conditioning, workflows
from warmpool.sim.clock import ScaledClock
from warmpool.sim.comfyui import DEFAULT_MODELS, ComfyServer, start_comfyui

RECORDED = Path(__file__).parents[1] / "data" / "comfyui-0.3.64" / "exchanges"
FLUX = "flux1-dev-fp8.safetensors"
REDUX = StyleModelSpec(
    style_model="flux1-redux-dev.safetensors",
    clip_vision="sigclip_vision_patch14_384.safetensors",
    checkpoints=[FLUX],
)
MODELS = {**{k: list(v) for k, v in DEFAULT_MODELS.items()}, "checkpoints": [FLUX],
          "style_models": [REDUX.style_model], "clip_vision": [REDUX.clip_vision]}  # fmt: skip
VERSIONS = ["0.38.1", "0.3.64"]


@pytest.fixture(params=VERSIONS)
async def comfy(request: pytest.FixtureRequest) -> AsyncIterator[ComfyServer]:
    server = await start_comfyui(token=None, clock=ScaledClock(50.0), comfyui_version=request.param,
                                 models=MODELS, step_seconds=0, load_seconds=0,
                                 node_seconds=0)  # fmt: skip
    try:
        yield server
    finally:
        await server.stop()


def png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def upload(http: httpx.AsyncClient, name: str, data: bytes) -> str:
    files = {"image": (name, data, "image/png")}
    answer = (await http.post("/upload/image", files=files, data={"subfolder": "warmpool"})).json()
    return f"{answer['subfolder']}/{answer['name']}"


def graph(images: list[str], *, strength: float = 1.0) -> dict[str, Any]:
    job = GenerationJobSpec(pool="flux", prompt="Ada at the harbour", model=FLUX, seed=3,
                            quality="low", width=128, height=128, steps=2)  # fmt: skip
    style = conditioning.StyleInputs(REDUX.style_model, REDUX.clip_vision, tuple(images),
                                     strength, "multiply")  # fmt: skip
    return workflows.build_workflow(job, namespace="ns", job="j", style=style).graph


async def run(http: httpx.AsyncClient, g: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post("/prompt", json={"prompt": g})
    assert answer.status_code == 200, answer.text
    pid = answer.json()["prompt_id"]

    async def finished() -> dict[str, Any] | None:
        entry: dict[str, Any] | None = (await http.get(f"/history/{pid}")).json().get(pid)
        return entry if entry and entry["status"]["completed"] else None

    return await eventually(finished, timeout=10, what=f"prompt {pid} finished")


async def test_a_redux_graph_validates_and_runs(comfy: ComfyServer) -> None:
    async with httpx.AsyncClient(base_url=comfy.url) as http:
        red, blue = await upload(http, "red.png", png("red")), await upload(http, "blue.png",
                                                                          png("blue"))  # fmt: skip
        g = graph([red, blue])
        assert [n["class_type"] for n in g.values()].count("StyleModelApply") == 2
        info = (await http.get("/object_info")).json()
        assert workflows.validate_graph(g, info) == []  # the served catalogue agrees
        entry = await run(http, g)
        assert entry["status"]["status_str"] == "success"
        (image,) = entry["outputs"]["10"]["images"]
        first = (await http.get("/view", params=image)).content
        assert Image.open(io.BytesIO(first)).size == (128, 128)
        # each reference shapes the image: other references (or strength) give another one
        other = await run(http, graph([red, red]))
        weaker = await run(http, graph([red, blue], strength=0.3))
        digests = {first}
        for e in (other, weaker):
            (img,) = e["outputs"]["10"]["images"]
            digests.add((await http.get("/view", params=img)).content)
        assert len(digests) == 3


async def test_a_missing_style_model_is_refused_as_comfyui_refuses_it(comfy: ComfyServer) -> None:
    comfy.remove_model("style_models", REDUX.style_model)
    async with httpx.AsyncClient(base_url=comfy.url) as http:
        ref = await upload(http, "red.png", png("red"))
        answer = await http.post("/prompt", json={"prompt": graph([ref])})
    assert answer.status_code == 400
    body = answer.json()
    recorded = json.loads((RECORDED / "01-validation-checkpoint-not-installed.json").read_text())
    want = recorded["response"]["body"]
    assert body["error"] == want["error"]
    assert list(body["node_errors"]) == ["50"]
    entry = body["node_errors"]["50"]
    assert (entry["class_type"], entry["dependent_outputs"]) == ("StyleModelLoader", ["10"])
    (error,) = entry["errors"]
    (recorded_error,) = want["node_errors"]["1"]["errors"]
    assert (error["type"], error["message"]) == (recorded_error["type"], recorded_error["message"])
    assert error["details"] == "style_model_name: 'flux1-redux-dev.safetensors' not in []"
    assert sorted(error["extra_info"]) == sorted(recorded_error["extra_info"])
    assert error["extra_info"]["received_value"] == REDUX.style_model
