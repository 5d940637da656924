"""A video job on a Wan pool, end to end: the real operator (Kopf) against the emulated API,
the Vast.ai simulator and the ComfyUI simulators behind its rentals, which hold the
family's files; the stored MP4 decodes with the requested frame count."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import av
import jobsys
import pytest
from jobsys import DONE, job_body, phase, pool_body, ready, status
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer

FAMILY = {"name": "wan22-5b", "architecture": "wan22", "modes": ["text"],
          "diffusionModel": "wan2.2_ti2v_5B_fp16.safetensors",
          "textEncoder": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
          "vae": "wan2.2_vae.safetensors"}  # fmt: skip
FILES = {"diffusion_models": [FAMILY["diffusionModel"]],
         "text_encoders": [FAMILY["textEncoder"]], "vae": [FAMILY["vae"]]}  # fmt: skip


@pytest.fixture
async def wan_sim() -> AsyncIterator[VastaiServer]:
    """Machines whose ComfyUI holds the SDXL defaults and the Wan 2.2 5B files."""
    server = await jobsys.start_jobs_vastai(step_seconds=0.15, seed=11, extra_models=FILES)
    try:
        yield server
    finally:
        await server.stop()


async def test_video_job_on_a_wan_pool_yields_an_mp4_with_the_requested_frames(
    cluster: RunningCluster, kubeconfig: Path, wan_sim: VastaiServer, artifacts_url: str
) -> None:
    models = [{"folder": "checkpoints", "file": "sd_xl_base_1.0.safetensors"}]
    models += [{"folder": f, "file": n} for f, names in FILES.items() for n in names]
    cluster.create(pool_body("wan", replicas=1,
                             template={"diskGb": 50, "models": models,
                                       "videoFamilies": [FAMILY]}))  # fmt: skip
    async with jobsys.operator(jobsys.settings(artifacts_url, wan_sim.url)) as deps:
        await ready(cluster, 1)
        cluster.create(job_body("clip", "wan", kind="video", frames=17, fps=8,
                                width=256, height=160, steps=2))  # fmt: skip
        await eventually(lambda: phase(cluster, "clip") in DONE, timeout=60, what="video done")
        st = status(cluster, "clip")
        assert st["phase"] == "Succeeded", (st.get("reason"), st.get("message"))
        by_type = {o["contentType"]: o for o in st["outputs"]}
        assert set(by_type) == {"video/mp4", "image/png"}  # the MP4 and its poster
        assert by_type["video/mp4"]["key"].endswith(".mp4")
        data = await deps.artifacts.get_bytes(by_type["video/mp4"]["key"])
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.average_rate == 8
            assert len(list(container.decode(stream))) == 17
        assert (by_type["image/png"]["width"], by_type["image/png"]["height"]) == (256, 160)
