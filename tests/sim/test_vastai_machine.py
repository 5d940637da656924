"""Simulated machines run the operator's real provisioning step, and ComfyUI lists what landed."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from model_server import ModelServer, Route
from waiting import eventually

from warmpool.crds.gpupool import TemplateSpec
from warmpool.operator.decisions import provisioning
from warmpool.sim import vastai_machine

KEY = "vast-sim-key-SECRET-42"
COMFY_TOKEN = "instance-token-0123"
HF_TOKEN = "hf_SECRET_abcdef0123456789"
BLOB = os.urandom(200_000)


@pytest.fixture
def models() -> Iterator[ModelServer]:
    with ModelServer() as s:
        yield s


@pytest.fixture
async def vast(vastai_fast_timing: Any) -> AsyncIterator[Any]:
    from warmpool.sim.vastai import start_vastai

    server = await start_vastai(
        api_key=KEY,
        time_scale=100.0,
        comfy=True,
        comfy_options={"step_seconds": 0.05, "load_seconds": 0.5, "node_seconds": 0.01},
        timing=vastai_fast_timing,
        provision_timeout=30.0,
    )
    try:
        yield server
    finally:
        await server.stop()


async def rent(vast: Any, template: TemplateSpec, extra_env: dict[str, str]) -> int:
    p = provisioning.compose_provisioning(template, stall_seconds=2)
    body = {
        "image": "vastai/comfyui:latest",
        "disk": 40,
        "label": "warmpool.ns.pool.ginst-1",
        "env": {"-p 8188:8188": "1", "OPEN_BUTTON_TOKEN": COMFY_TOKEN, **p.env, **extra_env},
        "onstart": p.onstart,
        "runtype": "args",
    }
    async with httpx.AsyncClient(
        base_url=vast.url, headers={"Authorization": f"Bearer {KEY}"}
    ) as http:
        offers = await http.post(
            "/api/v0/bundles/", json={"direct_port_count": {"gte": 1}, "limit": 1}
        )
        offer = offers.json()["offers"][0]
        answer = await http.put(f"/api/v0/asks/{offer['id']}/", json=body)
        assert answer.status_code == 200, answer.text
        contract: int = answer.json()["new_contract"]
        return contract


async def comfy_get(vast: Any, contract: int, path: str, **params: str) -> httpx.Response | None:
    rental = vast.state.rentals.get(contract)
    if rental is None or rental.comfy is None:
        return None
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{rental.comfy.port}",
        headers={"Authorization": f"Bearer {COMFY_TOKEN}"},
    ) as http:
        return await http.get(path, params=params)


async def status_file(vast: Any, contract: int) -> dict[str, Any] | None:
    got = await comfy_get(
        vast, contract, "/view", type="output", subfolder="warmpool", filename="models.json"
    )
    if got is None or got.status_code != 200:
        return None
    data: dict[str, Any] = json.loads(got.content)
    return data if data["done"] else None


async def test_the_machine_downloads_and_comfyui_lists_the_files(
    vast: Any, models: ModelServer
) -> None:
    route = Route(data=BLOB, token=HF_TOKEN, redirect_to_cdn="/blob/a")
    template = TemplateSpec.model_validate(
        {
            "models": [
                {"folder": "checkpoints", "file": "sd_xl_base_1.0.safetensors"},  # in the image
                {"folder": "checkpoints", "file": "mine.safetensors",
                 "url": models.add("/resolve/a", route), "sha256": route.sha256,
                 "tokenSecret": {"name": "hf", "key": "token"}},
                {"folder": "loras", "file": "l.safetensors",
                 "url": models.add("/l", Route(data=b"lora" * 100))},
            ]
        }
    )  # fmt: skip
    token_env = {"WARMPOOL_MODEL_TOKEN_HF_TOKEN": HF_TOKEN}
    contract = await rent(vast, template, token_env)

    report = await eventually(lambda: status_file(vast, contract), timeout=30, what="report")
    assert [(m["file"], m["phase"]) for m in report["models"]] == [
        ("mine.safetensors", "Present"),
        ("l.safetensors", "Present"),
    ]
    ckpts = await comfy_get(vast, contract, "/models/checkpoints")
    assert ckpts is not None
    assert "mine.safetensors" in ckpts.json() and "sd_xl_base_1.0.safetensors" in ckpts.json()
    loras = await comfy_get(vast, contract, "/models/loras")
    assert loras is not None and "l.safetensors" in loras.json()
    workspace = vast.state.rentals[contract].workspace
    assert (workspace / "ComfyUI/models/checkpoints/mine.safetensors").read_bytes() == BLOB
    assert all(s.authorization is None for s in models.seen if s.host == "127.0.0.2")


async def test_a_failed_download_is_in_the_report_and_not_listed(
    vast: Any, models: ModelServer
) -> None:
    template = TemplateSpec.model_validate(
        {"models": [{"folder": "vae", "file": "v.safetensors", "url": models.url("/gone")}]}
    )
    contract = await rent(vast, template, {})
    report = await eventually(lambda: status_file(vast, contract), timeout=30, what="report")
    assert [(m["phase"], m["reason"], m["httpStatus"]) for m in report["models"]] == [
        ("Failed", "ModelNotFound", 404)
    ]
    vae = await comfy_get(vast, contract, "/models/vae")
    assert vae is not None and "v.safetensors" not in vae.json()


async def test_destroying_the_rental_kills_the_download_and_removes_the_workspace(
    vast: Any, models: ModelServer
) -> None:
    url = models.add("/slow", Route(data=BLOB, stall_after=1000))
    template = TemplateSpec.model_validate(
        {"models": [{"folder": "vae", "file": "v.safetensors", "url": url}]}
    )
    contract = await rent(vast, template, {})
    rental = vast.state.rentals[contract]
    await eventually(lambda: models.active > 0, timeout=30, what="download started")
    await vast.state.destroy(rental)
    assert rental.provisioning is None
    assert rental.workspace is not None and not rental.workspace.exists()
    await eventually(lambda: models.active == 0, timeout=10, what="connection closed")


def test_a_cancelled_provisioning_leaves_no_open_pipe(tmp_path: Any) -> None:
    """The shell exits but a child it left holds the output pipe; the machine's task is then
    cancelled (the simulator stopping) and the loop closes. Nothing is left for the garbage
    collector to warn about in whichever later test it runs."""
    started = tmp_path / "started"

    async def scenario() -> None:
        line = f"(sleep 30) & touch {started}; exit 1"
        task = asyncio.create_task(
            vastai_machine.run_provisioning(line, {}, tmp_path, timeout=60.0, log=[])
        )
        await eventually(started.exists, timeout=10, what="the shell ran")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop = asyncio.new_event_loop()  # its own loop, closed as the simulator's would be
        try:
            loop.run_until_complete(scenario())
        finally:
            loop.close()
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []
