"""ComfyUI client over HTTP (T2, respx): status → error table, validation errors, probe."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from warmpool.operator import errors, metrics
from warmpool.operator.adapters import comfy

URL = "http://comfy.test:8188"
TOKEN = "comfy-token-SECRET-0123456789"
STATS = {
    "system": {"comfyui_version": "0.38.1", "python_version": "3.12", "pytorch_version": "2.8"},
    "devices": [{"name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync", "type": "cuda",
                 "index": 0, "vram_total": 1, "vram_free": 1}],
}  # fmt: skip


async def no_sleep(_: float) -> None:
    return None


def client(http: httpx.AsyncClient) -> comfy.ComfyClient:
    return comfy.ComfyClient(http, URL, TOKEN, attempts=3, sleep=no_sleep)


async def test_token_is_sent_as_bearer_never_in_the_url(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    route = comfy_mock.get("/system_stats").respond(json=STATS)
    await client(comfy_http).system_stats()
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(request.url)


@pytest.mark.parametrize(
    ("response", "error", "retried"),
    [
        pytest.param(httpx.Response(401), errors.ComfyAuthError, False, id="401-auth"),
        pytest.param(httpx.Response(403), errors.ComfyAuthError, False, id="403-auth"),
        pytest.param(httpx.Response(502), errors.ComfyServerError, True, id="502"),
        pytest.param(httpx.ConnectError("refused"), errors.ComfyRefusedError, True,
                     id="refused"),
        pytest.param(httpx.ReadTimeout("slow"), errors.ComfyTimedOutError, True,
                     id="timeout"),
        pytest.param(httpx.Response(200, text="<html>"), errors.ComfyMalformedResponseError,
                     False, id="not-json"),
    ],
)  # fmt: skip
async def test_status_to_error_table(
    comfy_http: httpx.AsyncClient,
    comfy_mock: respx.MockRouter,
    response: httpx.Response | Exception,
    error: type[Exception],
    retried: bool,
) -> None:
    route = comfy_mock.get("/system_stats")
    if isinstance(response, Exception):
        route.side_effect = response
    else:
        route.return_value = response
    with pytest.raises(error) as caught:
        await client(comfy_http).system_stats()
    if retried:
        assert isinstance(caught.value, errors.ComfyUnavailableError)
        assert route.call_count == 3  # retried
    assert TOKEN not in str(caught.value)


async def test_transient_failures_are_retried_then_succeed(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    route = comfy_mock.get("/queue")
    route.side_effect = [httpx.Response(503), httpx.Response(200, json={
        "queue_running": [[1, "a", {}, {}, ["9"]]],
        "queue_pending": [[5, "c", {}, {}, ["9"]], [3, "b", {}, {}, ["9"]]]})]  # fmt: skip
    state = await client(comfy_http).queue_state()
    assert state == comfy.QueueState(running=("a",), pending=("b", "c"))
    assert state.remaining == 3


async def test_validation_error_names_node_and_input(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    body = {
        "error": {"type": "prompt_outputs_failed_validation",
                  "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
        "node_errors": {"3": {"errors": [{
            "type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1",
            "details": "steps", "extra_info": {"input_name": "steps", "received_value": 0}}],
            "dependent_outputs": ["9"], "class_type": "KSampler"}},
    }  # fmt: skip
    route = comfy_mock.post("/prompt").respond(400, json=body)
    with pytest.raises(errors.ComfyValidationError) as caught:
        await client(comfy_http).submit_prompt({"3": {}}, "cid")
    assert (caught.value.node_id, caught.value.node_type, caught.value.input_name) == (
        "3", "KSampler", "steps")  # fmt: skip
    assert "smaller than min" in str(caught.value)
    assert route.call_count == 1  # never retried


async def test_prompt_level_validation_error(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    body = {"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                      "details": "", "extra_info": {}}, "node_errors": {}}  # fmt: skip
    comfy_mock.post("/prompt").respond(400, json=body)
    with pytest.raises(errors.ComfyValidationError, match="prompt_no_outputs"):
        await client(comfy_http).submit_prompt({}, "cid")


async def test_submit_returns_the_prompt_id(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    route = comfy_mock.post("/prompt").respond(
        json={"prompt_id": "p-1", "number": 4, "node_errors": {}}
    )
    submitted = await client(comfy_http).submit_prompt({"9": {}}, "cid")
    assert submitted == comfy.Submitted("p-1", 4)
    import json

    assert json.loads(route.calls.last.request.content) == {"prompt": {"9": {}}, "client_id": "cid"}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param({"exception_type": "torch.OutOfMemoryError",
                      "exception_message": "CUDA out of memory. Tried to allocate 2 GiB\n"},
                     errors.ComfyOutOfMemoryError, id="torch-oom"),
        pytest.param({"exception_type": "RuntimeError",
                      "exception_message": "Allocation failed\nThis error means you ran out of "
                                           "memory on your GPU.\n"},
                     errors.ComfyOutOfMemoryError, id="tips-text"),
        pytest.param({"exception_type": "FileNotFoundError",
                      "exception_message": "Model in folder 'checkpoints' not found.\n"},
                     errors.ComfyExecutionError, id="other"),
    ],
)  # fmt: skip
def test_execution_errors_are_classified(data: dict[str, Any], error: type[Exception]) -> None:
    exc = comfy.execution_error({"node_id": "3", "node_type": "KSampler", **data})
    assert type(exc) is error
    assert exc.node_type == "KSampler"
    assert str(exc) == data["exception_message"].strip()


async def test_upload_returns_the_load_image_name(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    comfy_mock.post("/upload/image").respond(
        json={"name": "ref (1).png", "subfolder": "warmpool", "type": "input"}
    )
    name = await client(comfy_http).upload_image(b"\x89PNG", "ref.png", subfolder="warmpool")
    assert name == "warmpool/ref (1).png"


# ---------------------------------------------------------------- probe


def _probe_routes(mock: respx.MockRouter, stats: Any, models: list[str] | None = None) -> None:
    if isinstance(stats, Exception):
        mock.get("/system_stats").side_effect = stats
    elif isinstance(stats, httpx.Response):
        mock.get("/system_stats").return_value = stats
    else:
        mock.get("/system_stats").respond(json=stats)
    mock.get("/models/checkpoints").respond(json=models or [])


@pytest.mark.parametrize(
    ("stats", "models", "reason"),
    [
        pytest.param(httpx.ConnectError("x"), None, comfy.ProbeReason.REFUSED, id="refused"),
        pytest.param(httpx.ConnectTimeout("x"), None, comfy.ProbeReason.TIMED_OUT, id="timeout"),
        pytest.param(httpx.Response(502), None, comfy.ProbeReason.HTTP_ERROR, id="http-error"),
        pytest.param(httpx.Response(200, text="Loading..."), None, comfy.ProbeReason.NOT_JSON,
                     id="not-json"),
        pytest.param({"system": {}, "devices": []}, None, comfy.ProbeReason.NO_DEVICE,
                     id="no-device"),
        pytest.param(STATS, ["other.safetensors"], comfy.ProbeReason.MODEL_MISSING,
                     id="model-missing"),
        pytest.param(httpx.Response(401), None, comfy.ProbeReason.AUTH, id="auth"),
    ],
)  # fmt: skip
async def test_probe_reports_a_typed_reason(
    comfy_http: httpx.AsyncClient,
    comfy_mock: respx.MockRouter,
    stats: Any,
    models: list[str] | None,
    reason: comfy.ProbeReason,
) -> None:
    _probe_routes(comfy_mock, stats, models)
    before = metrics.COMFY_PROBE_FAILURES.labels(reason=reason.value)._value.get()
    result = await comfy.probe(
        comfy_http, URL, TOKEN, required_models=[("checkpoints", "sd.safetensors")],
        deadline=0.0, sleep=no_sleep,
    )  # fmt: skip
    assert not result.ready
    assert result.reason is reason
    assert result.attempts == 1
    assert metrics.COMFY_PROBE_FAILURES.labels(reason=reason.value)._value.get() == before + 1
    assert TOKEN not in result.message


async def test_probe_backs_off_until_ready(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    comfy_mock.get("/system_stats").side_effect = [
        httpx.ConnectError("x"), httpx.Response(502), httpx.Response(200, json=STATS),
    ]  # fmt: skip
    comfy_mock.get("/models/checkpoints").respond(json=["sd.safetensors"])
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    result = await comfy.probe(
        comfy_http, URL, TOKEN, required_models=[("checkpoints", "sd.safetensors")],
        deadline=60.0, initial_backoff=1.0, max_backoff=10.0, sleep=sleep,
    )  # fmt: skip
    assert result.ready
    assert result.attempts == 3
    assert result.device is not None
    assert "RTX 4090" in result.device
    assert len(sleeps) == 2
    assert sleeps[0] >= 1.0  # exponential with jitter: at least the initial wait
    assert sleeps[1] >= 2.0


async def test_probe_stops_at_once_on_auth_failure(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    route = comfy_mock.get("/system_stats").respond(401)
    result = await comfy.probe(comfy_http, URL, "wrong", deadline=60.0, sleep=no_sleep)
    assert result.reason is comfy.ProbeReason.AUTH
    assert route.call_count == 1
