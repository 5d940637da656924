"""ComfyUI client against the real simulator: websocket progress, faults, fallback to polling;
and a third-party client (comfy-api-simplified) working against the simulator unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
from typing import Any

import av
import httpx
import pytest
from aiohttp import web
from comfy_api_simplified import ComfyApiWrapper
from PIL import Image

from warmpool.crds.generationjob import GenerationJobSpec
from warmpool.crds.videofamily import VideoFamilySpec
from warmpool.operator import errors
from warmpool.operator.adapters import comfy
from warmpool.operator.decisions import workflows
from warmpool.sim.comfyui import ComfyServer

TOKEN = "comfy-token-SECRET-0123456789"


def graph(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"pool": "p", "prompt": "a lighthouse at dawn", "quality": "low",
                              "width": 256, "height": 256, "steps": 4, "seed": 7}  # fmt: skip
    spec = GenerationJobSpec(**{**fields, **overrides})
    return workflows.build_workflow(spec, namespace="ns", job="job-1").graph


async def collect(client: comfy.ComfyClient, output: comfy.OutputFile) -> bytes:
    chunks = []
    async with contextlib.aclosing(client.fetch_output(output)) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def client(comfy_server: ComfyServer, comfy_http: httpx.AsyncClient) -> comfy.ComfyClient:
    async def fast(_: float) -> None:
        await asyncio.sleep(0.01)

    return comfy.ComfyClient(comfy_http, comfy_server.url, TOKEN, sleep=fast)


async def test_run_prompt_reports_progress_and_fetches_the_image(
    client: comfy.ComfyClient,
) -> None:
    events: list[comfy.ProgressEvent] = []
    result = await client.run_prompt(graph(), on_progress=events.append, deadline=20)
    kinds = [e.kind for e in events]
    assert kinds[0] == "queued"
    assert "started" in kinds
    assert "cached" in kinds
    assert kinds[-1] == "success"
    assert [(e.value, e.max) for e in events if e.kind == "progress"] == [
        (i, 4) for i in (1, 2, 3, 4)
    ]
    [output] = result.outputs
    assert output.subfolder == "warmpool/ns"
    assert output.filename.startswith("job-1_")
    data = await collect(client, output)
    assert Image.open(io.BytesIO(data)).size == (256, 256)


async def test_animation_output_is_marked_animated(client: comfy.ComfyClient) -> None:
    spec = GenerationJobSpec(pool="p", kind="animation", prompt="waves", quality="low",
                             width=128, height=128, steps=2, frames=3, fps=6, seed=1)  # fmt: skip
    flow = workflows.build_workflow(spec, namespace="ns", job="vid")
    result = await client.run_prompt(flow.graph, deadline=20)
    [output] = result.outputs
    assert output.animated
    assert output.filename.endswith(".webp")


WAN = VideoFamilySpec(name="wan22-5b", architecture="wan22", modes=["text", "image"],
                      diffusion_model="wan2.2_ti2v_5B_fp16.safetensors",
                      text_encoder="umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                      vae="wan2.2_vae.safetensors")  # fmt: skip


@pytest.mark.parametrize("frames", [17, 9])
async def test_video_job_yields_a_playable_mp4_with_the_requested_frames(
    client: comfy.ComfyClient, comfy_server: ComfyServer, frames: int
) -> None:
    """A Wan text-to-video graph on the simulator: an H.264 MP4 that decodes to the
    requested number of frames at the requested rate, and a PNG poster."""
    for folder, file in WAN.files():
        comfy_server.add_model(folder, file)
    spec = GenerationJobSpec(pool="p", kind="video", prompt="waves", quality="low", width=256,
                             height=160, steps=2, frames=frames, fps=12, seed=1)  # fmt: skip
    flow = workflows.build_workflow(spec, namespace="ns", job="vid", family=WAN)
    assert flow.frames == frames  # 4k+1 already
    result = await client.run_prompt(flow.graph, deadline=30)
    by_ext = {o.filename.rsplit(".", 1)[1]: o for o in result.outputs}
    assert set(by_ext) == {"mp4", "png"}
    data = await collect(client, by_ext["mp4"])
    assert data[4:8] == b"ftyp"
    assert data.find(b"moov") < data.find(b"mdat")  # faststart: plays while downloading
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (256, 160)
        assert stream.average_rate == 12
        decoded = list(container.decode(stream))
    assert len(decoded) == frames
    poster = Image.open(io.BytesIO(await collect(client, by_ext["png"])))
    assert poster.size == (256, 160)
    first = decoded[0].to_image()
    diff = sum(abs(a - b) for a, b in zip(first.resize((32, 20)).tobytes(),
                                          poster.convert("RGB").resize((32, 20)).tobytes(),
                                          strict=True))  # fmt: skip
    assert diff / (32 * 20 * 3) < 12  # the poster is the video's first frame


async def test_save_webm_writes_a_vp9_webm(
    client: comfy.ComfyClient, comfy_server: ComfyServer
) -> None:
    flow = graph()
    flow["10"] = {"class_type": "SaveWEBM", "inputs": {
        "images": ["9", 0], "filename_prefix": "warmpool/ns/webm", "codec": "vp9",
        "fps": 8.0, "crf": 32.0}}  # fmt: skip
    flow["5"]["inputs"]["batch_size"] = 5
    result = await client.run_prompt(flow, deadline=30)
    [output] = result.outputs
    assert output.filename.endswith(".webm")
    data = await collect(client, output)
    assert data.startswith(b"\x1a\x45\xdf\xa3")
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name in ("vp9", "libvpx-vp9")
        assert len(list(container.decode(stream))) == 5


async def test_system_stats_object_info_and_models(client: comfy.ComfyClient) -> None:
    assert (await client.system_stats())["devices"][0]["type"] == "cuda"
    info = await client.object_info()
    assert workflows.validate_graph(graph(), info) == []
    assert "KSampler" in await client.object_info("KSampler")
    assert "sd_xl_base_1.0.safetensors" in await client.list_models("checkpoints")


async def test_validation_error_from_the_simulator(client: comfy.ComfyClient) -> None:
    bad = graph()
    bad["1"]["inputs"]["ckpt_name"] = "missing.safetensors"
    with pytest.raises(errors.ComfyValidationError) as caught:
        await client.submit_prompt(bad, "cid")
    assert caught.value.node_type == "CheckpointLoaderSimple"
    assert caught.value.input_name == "ckpt_name"


async def test_out_of_memory_raises_the_typed_error(
    client: comfy.ComfyClient, comfy_server: ComfyServer
) -> None:
    comfy_server.out_of_memory("KSampler", after_steps=2)
    with pytest.raises(errors.ComfyOutOfMemoryError) as caught:
        await client.run_prompt(graph(), deadline=20)
    assert caught.value.exception_type == "torch.OutOfMemoryError"
    assert caught.value.node_type == "KSampler"
    assert "out of memory" in str(caught.value)


async def test_interrupt_raises_interrupted(
    client: comfy.ComfyClient, comfy_server: ComfyServer
) -> None:
    comfy_server.stall_progress(after_steps=2)

    async def interrupt_on_progress(event: comfy.ProgressEvent) -> None:
        if event.kind == "progress":
            await client.interrupt(event.prompt_id)

    with pytest.raises(errors.ComfyInterruptedError):
        await client.run_prompt(graph(), on_progress=interrupt_on_progress, deadline=20)


async def test_socket_drop_falls_back_to_history_polling(
    client: comfy.ComfyClient, comfy_server: ComfyServer
) -> None:
    """Regression story: a proxy restart closes the websocket mid-job; the job still
    finishes on the machine, so the client must find its result in /history."""
    comfy_server.stall_progress(after_steps=2)
    dropped = False

    async def drop_then_unstall(event: comfy.ProgressEvent) -> None:
        nonlocal dropped
        if event.kind == "progress" and not dropped:
            dropped = True
            await comfy_server.drop_websockets()
            comfy_server.faults.stall_after_steps = None

    result = await client.run_prompt(
        graph(seed=99), on_progress=drop_then_unstall, deadline=20, poll_interval=0.05
    )
    assert dropped
    assert result.via == "history"
    assert len(result.outputs) == 1


async def test_crash_mid_job_is_reported_as_unavailable(
    client: comfy.ComfyClient, comfy_server: ComfyServer
) -> None:
    comfy_server.crash_mid_job(after_steps=1)
    with pytest.raises(errors.ComfyUnavailableError):
        await client.run_prompt(graph(seed=5), deadline=1, poll_interval=0.05)


async def test_follow_an_already_finished_prompt(client: comfy.ComfyClient) -> None:
    submitted = await client.submit_prompt(graph(seed=11), "someone-else")
    async with asyncio.timeout(10):
        while await client.history(submitted.prompt_id) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    result = await client.follow_prompt(submitted.prompt_id, "me", deadline=10)
    assert len(result.outputs) == 1


async def test_upload_and_image_to_image(client: comfy.ComfyClient) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (200, 120), "blue").save(buffer, format="PNG")
    name = await client.upload_image(buffer.getvalue(), "ref.png")
    spec = GenerationJobSpec(pool="p", prompt="x", quality="low", width=128, height=128,
                             steps=2, seed=3, reference_image="artifacts/ref.png")  # fmt: skip
    flow = workflows.build_workflow(spec, namespace="ns", job="i2i", reference_upload=name)
    result = await client.run_prompt(flow.graph, deadline=20)
    data = await collect(client, result.outputs[0])
    assert Image.open(io.BytesIO(data)).size == (128, 128)


async def test_probe_against_the_simulator(
    comfy_server: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    ready = await comfy.probe(
        comfy_http, comfy_server.url, TOKEN,
        required_models=[("checkpoints", "sd_xl_base_1.0.safetensors")], deadline=5,
    )  # fmt: skip
    assert ready.ready
    comfy_server.remove_model("checkpoints", "sd_xl_base_1.0.safetensors")
    missing = await comfy.probe(
        comfy_http, comfy_server.url, TOKEN,
        required_models=[("checkpoints", "sd_xl_base_1.0.safetensors")], deadline=0,
    )  # fmt: skip
    assert missing.reason is comfy.ProbeReason.MODEL_MISSING
    assert missing.missing_models == ("checkpoints/sd_xl_base_1.0.safetensors",)


async def test_third_party_client_works_unchanged(comfy_server: ComfyServer) -> None:
    """comfy-api-simplified (requests + websockets, HTTP Basic auth) submits a graph
    and fetches the image; it is synchronous, so it runs in a thread."""
    g = graph(seed=random.Random(1).randint(0, 1000))
    for node_id, node in g.items():
        node["_meta"] = {"title": "Save Image" if node_id == "10" else f"node {node_id}"}
    api = ComfyApiWrapper(comfy_server.url, user="warmpool", password=TOKEN)
    images = await asyncio.to_thread(api.queue_and_wait_images, g, "Save Image")
    [(name, data)] = images.items()
    assert name.startswith("job-1_")
    assert Image.open(io.BytesIO(data)).format == "PNG"
    stats = await asyncio.to_thread(api.get_system_stats)
    assert stats["devices"]


async def test_a_prompt_ending_during_the_handshake_is_still_seen_on_the_socket(
    client: comfy.ComfyClient, comfy_server: ComfyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression story: ComfyUI registers a websocket only after the handshake. A job
    runner opened the socket, submitted at once, and its prompt (all nodes cached, so
    instant) ended in that gap: the end was announced to nobody and the job hung until
    its deadline. Same for following a prompt whose history was checked too early.
    The client now waits for the server's first ``status`` (sent once the socket is
    registered) before submitting or checking history. Here the simulator's gap is
    widened, and every prompt must still be followed to its end on the socket."""
    original = web.WebSocketResponse.prepare

    async def slow_prepare(self: web.WebSocketResponse, request: web.BaseRequest) -> Any:
        writer = await original(self, request)
        await asyncio.sleep(0.15)  # the handshake is done; registration comes later
        return writer

    flow = graph(seed=123)
    await client.run_prompt(flow, deadline=20)  # warm: every node is cached from now on
    monkeypatch.setattr(web.WebSocketResponse, "prepare", slow_prepare)
    for n in range(4):
        result = await client.run_prompt(flow, deadline=5, poll_interval=0.05)
        assert (result.via, len(result.outputs)) == ("websocket", 1), n
        submitted = await client.submit_prompt(flow, f"follower-{n}")
        followed = await client.follow_prompt(
            submitted.prompt_id, f"follower-{n}", deadline=5, poll_interval=0.05
        )
        assert (followed.via, len(followed.outputs)) == ("websocket", 1), n
