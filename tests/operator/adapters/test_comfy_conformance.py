"""ComfyUI client against answers recorded from a real ComfyUI 0.3.64 (T2, respx).

Each test replays a body the real server sent (``tests/data/comfyui-0.3.64/exchanges``)
and checks the client reads it as the server meant it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from warmpool.operator import errors
from warmpool.operator.adapters import comfy
from warmpool.operator.decisions import workflows

EXCHANGES = Path(__file__).parents[2] / "data" / "comfyui-0.3.64" / "exchanges"
URL = "http://comfy.test:8188"


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXCHANGES / name).read_text())
    return data


async def no_sleep(_: float) -> None:
    return None


def client(http: httpx.AsyncClient) -> comfy.ComfyClient:
    return comfy.ComfyClient(http, URL, "tok", attempts=1, sleep=no_sleep)


async def test_partly_valid_graph_keeps_the_prompt_id(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    """Regression: a 200 carrying a prompt_id AND node_errors was raised as a validation
    error, so the prompt the server had queued (and ran) could be neither followed nor
    interrupted. Real 0.3.64 answers so when one output validates and another does not."""
    exchange = recorded("01-validation-partly-valid-graph.json")
    answer = exchange["response"]["body"]
    comfy_mock.post("/prompt").respond(exchange["response"]["status"], json=answer)
    submitted = await client(comfy_http).submit_prompt(exchange["request"]["body"]["prompt"], "c")
    assert submitted.prompt_id == answer["prompt_id"]
    assert submitted.number == answer["number"]
    assert set(submitted.node_errors) == {"3"}
    route = comfy_mock.post("/interrupt").respond(200)
    await client(comfy_http).interrupt(submitted.prompt_id)
    assert json.loads(route.calls.last.request.content) == {"prompt_id": answer["prompt_id"]}


@pytest.mark.parametrize(
    ("name", "node_id", "input_name"),
    [
        pytest.param("01-validation-int-below-min.json", "1", "width", id="below-min"),
        pytest.param("01-validation-combo-value-not-in-list-sampler-name.json", "5",
                     "sampler_name", id="sampler-not-in-list"),
        pytest.param("01-validation-checkpoint-not-installed.json", None, "ckpt_name",
                     id="checkpoint-missing"),
        pytest.param("01-validation-unknown-class-type.json", "", "", id="unknown-class"),
        pytest.param("01-validation-no-output-node.json", "", "", id="no-outputs"),
    ],
)  # fmt: skip
async def test_real_refusals_become_validation_errors(
    comfy_http: httpx.AsyncClient,
    comfy_mock: respx.MockRouter,
    name: str,
    node_id: str | None,
    input_name: str,
) -> None:
    exchange = recorded(name)
    comfy_mock.post("/prompt").respond(400, json=exchange["response"]["body"])
    with pytest.raises(errors.ComfyValidationError) as caught:
        await client(comfy_http).submit_prompt(exchange["request"]["body"]["prompt"], "c")
    assert caught.value.input_name == input_name
    if node_id is not None:
        assert caught.value.node_id == node_id
    if node_id == "":
        assert exchange["response"]["body"]["error"]["message"] in str(caught.value)


@pytest.mark.parametrize(
    ("exception_type", "message", "error"),
    [
        pytest.param("RuntimeError", "[enforce fail at alloc_cpu.cpp:118] data. "
                     "DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                     "21474836480 bytes. Error code 12 (Cannot allocate memory)\n",
                     errors.ComfyOutOfMemoryError, id="host-memory"),
        pytest.param("RuntimeError", "can't allocate a tensor of that dtype\n",
                     errors.ComfyExecutionError, id="not-memory"),
    ],
)  # fmt: skip
def test_host_memory_exhaustion_is_out_of_memory(
    exception_type: str, message: str, error: type[Exception]
) -> None:
    """Regression: torch's CPU allocator failure was an ordinary execution error, so the
    job was retried on the same machine with the same graph instead of as an OOM."""
    exc = comfy.execution_error(
        {"node_id": "5", "node_type": "KSampler", "exception_type": exception_type,
         "exception_message": message}
    )  # fmt: skip
    assert type(exc) is error


def test_validate_graph_accepts_a_load_image_in_a_subfolder() -> None:
    """Real 0.3.64 runs LoadImage of ``subfolder/name`` although its COMBO lists only the
    top of ``input/`` (exchange 08-loadimage-subfolder-upload-accepted)."""
    exchange = recorded("08-loadimage-subfolder-upload-accepted.json")
    graph = next(
        e["request"]["body"]["prompt"]
        for e in exchange.get("exchanges", [exchange])
        if e["request"]["path"] == "/prompt"
    )
    catalogue = json.loads(
        (Path(__file__).parents[3] / "sim" / "data" / "comfyui-0.3.64-object_info.json").read_text()
    )
    image = next(n["inputs"]["image"] for n in graph.values() if n["class_type"] == "LoadImage")
    assert "/" in image
    assert image not in catalogue["LoadImage"]["input"]["required"]["image"][0]
    assert workflows.validate_graph(graph, catalogue) == []
    bad = json.loads(json.dumps(graph).replace(image, "../escape.png"))
    assert workflows.validate_graph(bad, catalogue) != []
