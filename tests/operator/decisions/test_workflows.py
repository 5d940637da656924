"""Workflow builders (T1, pure): golden graphs, presets, overrides, seeds, validation, estimates.

Regenerate the golden files after an intended change with
``WARMPOOL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/operator/decisions/test_workflows.py``.
"""

from __future__ import annotations

import copy
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from warmpool.crds.generationjob import GenerationJobSpec, LoraRef
from warmpool.crds.videofamily import VideoFamilySpec
from warmpool.operator.decisions import workflows
from warmpool.sim import comfyui_legacy
from warmpool.sim.comfyui_nodes import node_definitions

GOLDEN = Path(__file__).parent / "golden"
WAN21 = VideoFamilySpec(
    name="wan21-14b-i2v", architecture="wan", modes=["image"],
    diffusion_model="wan2.1_i2v_480p_14B_fp16.safetensors",
    text_encoder="umt5_xxl_fp8_e4m3fn_scaled.safetensors", vae="wan_2.1_vae.safetensors",
    clip_vision="clip_vision_h.safetensors", seconds_per_frame=9.0,
)  # fmt: skip
WAN22 = VideoFamilySpec(
    name="wan22-5b", architecture="wan22", modes=["text", "image"],
    diffusion_model="wan2.2_ti2v_5B_fp16.safetensors",
    text_encoder="umt5_xxl_fp8_e4m3fn_scaled.safetensors", vae="wan2.2_vae.safetensors",
)  # fmt: skip
WAN14 = VideoFamilySpec(
    name="wan22-14b-t2v", architecture="wan",
    diffusion_model="wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
    text_encoder="umt5_xxl_fp8_e4m3fn_scaled.safetensors", vae="wan_2.1_vae.safetensors",
)  # fmt: skip
WAN14_I2V = VideoFamilySpec(
    name="wan22-14b-i2v", architecture="wan", modes=["image"],
    diffusion_model="wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
    text_encoder="umt5_xxl_fp8_e4m3fn_scaled.safetensors", vae="wan_2.1_vae.safetensors",
)  # fmt: skip
LTXV = VideoFamilySpec(
    name="ltxv-2b", architecture="ltxv", modes=["text", "image"],
    diffusion_model="ltx-video-2b-v0.9.5.safetensors",
    text_encoder="t5xxl_fp16.safetensors", vae="ltx-video-2b-v0.9.5-vae.safetensors",
)  # fmt: skip
MODELS: dict[str, list[str]] = {
    "checkpoints": ["sd_xl_base_1.0.safetensors", "juggernautXL_v9.safetensors"],
    "loras": ["add_detail.safetensors"],
}
for _family in (WAN21, WAN22, WAN14, WAN14_I2V, LTXV):
    for _folder, _file in _family.files():
        MODELS.setdefault(_folder, []).append(_file)
#: The simulator's own (0.38) catalogue and the real 0.3.64 one, both with these files.
CATALOGUE = node_definitions(MODELS, ["warmpool/ref.png"])
REAL_0364 = comfyui_legacy.node_definitions(MODELS, ["ref.png"])
CATALOGUES = {"sim-0.38": CATALOGUE, "real-0.3.64": REAL_0364}


def spec(**fields: Any) -> GenerationJobSpec:
    return GenerationJobSpec(**{"pool": "sdxl", "prompt": "a lighthouse at dawn", **fields})


CASES = {
    "txt2img-medium": spec(negative_prompt="blurry", seed=42),
    "txt2img-low-batch": spec(quality="low", batch_size=4, seed=1),
    "txt2img-ultra-overrides": spec(quality="ultra", width=1024, height=576, steps=30, cfg=4.5,
                                    sampler="euler_ancestral", scheduler="simple", seed=5,
                                    model="juggernautXL_v9.safetensors"),
    "txt2img-lora": spec(lora=LoraRef(name="add_detail.safetensors", strength=0.7), seed=3),
    "img2img": spec(reference_image="artifacts/u/ref.png", denoise=0.45, seed=9),
    "animation": spec(kind="animation", frames=24, fps=12, seed=2),
    "wan-t2v": spec(kind="video", model="wan22-14b-t2v", frames=33, seed=4),
    "wan-i2v": spec(kind="video", model="wan22-14b-i2v", reference_image="artifacts/u/ref.png",
                    quality="high", seed=6),
    "wan22-5b-t2v": spec(kind="video", model="wan22-5b", frames=49, fps=24, seed=5),
    "wan22-5b-i2v": spec(kind="video", model="wan22-5b", reference_image="artifacts/u/ref.png",
                         seed=7),
    "wan21-i2v-clip-vision": spec(kind="video", model="wan21-14b-i2v",
                                  reference_image="artifacts/u/ref.png", frames=81, seed=8),
    "ltxv-t2v": spec(kind="video", model="ltxv-2b", frames=97, fps=24, seed=10),
    "ltxv-i2v": spec(kind="video", model="ltxv-2b", reference_image="artifacts/u/ref.png",
                     quality="low", seed=11),
    "canary": spec(quality="low", width=256, height=256, steps=4, seed=1,
                   prompt="warmpool canary: a small red cube on a white table"),
}  # fmt: skip
FAMILIES = {f.name: f for f in (WAN21, WAN22, WAN14, WAN14_I2V, LTXV)}


def build(name: str, **kwargs: Any) -> workflows.Workflow:
    case = CASES[name]
    family = FAMILIES.get(case.model or "") if case.kind == "video" else None
    return workflows.build_workflow(
        case, reference_upload="warmpool/ref.png", family=family,
        **{"namespace": "studio", "job": f"job-{name}", **kwargs},
    )  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_golden_graphs(name: str) -> None:
    flow = build(name)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("WARMPOOL_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(flow.graph, indent=2, sort_keys=True) + "\n")
    assert flow.graph == json.loads(path.read_text())


@pytest.mark.parametrize("catalogue", list(CATALOGUES))
@pytest.mark.parametrize("name", list(CASES))
def test_every_builder_output_is_valid_against_the_catalogue(name: str, catalogue: str) -> None:
    """Each preset, image, image-to-image, LoRA, animation, video family and the canary,
    against the simulator's catalogue and the one recorded from a real ComfyUI 0.3.64."""
    flow = build(name, namespace="ns", job="j")
    assert workflows.validate_graph(flow.graph, CATALOGUES[catalogue]) == []


@pytest.mark.parametrize("catalogue", list(CATALOGUES))
@pytest.mark.parametrize("quality", list(workflows.PRESETS))
@pytest.mark.parametrize("kind", ["image", "animation", "video"])
def test_every_preset_is_valid(quality: str, kind: str, catalogue: str) -> None:
    job = spec(quality=quality, kind=kind, seed=1)
    flow = workflows.build_workflow(job, namespace="n", job="j", family=WAN22)
    assert workflows.validate_graph(flow.graph, CATALOGUES[catalogue]) == []


def test_the_real_catalogue_catches_what_the_old_video_graph_got_wrong() -> None:
    """The real catalogue is strict where it matters: a CLIPLoader type it does not know
    and a missing video model file are both refused."""
    flow = build("wan-t2v")
    bad = copy.deepcopy(flow.graph)
    bad["2"]["inputs"]["type"] = "wan2"
    bad["1"]["inputs"]["unet_name"] = "not-installed.safetensors"
    problems = workflows.validate_graph(bad, REAL_0364)
    assert len(problems) == 2
    assert all("is not a choice" in p for p in problems)


@pytest.mark.parametrize(
    ("name", "classes"),
    [
        pytest.param("wan-t2v", {"UNETLoader", "CLIPLoader", "VAELoader", "ModelSamplingSD3",
                                 "EmptyHunyuanLatentVideo", "KSampler", "VAEDecode",
                                 "CreateVideo", "SaveVideo"}, id="wan-t2v"),
        pytest.param("wan-i2v", {"LoadImage", "WanImageToVideo"}, id="wan-i2v"),
        pytest.param("wan21-i2v-clip-vision", {"CLIPVisionLoader", "CLIPVisionEncode",
                                               "WanImageToVideo"}, id="wan21-clip-vision"),
        pytest.param("wan22-5b-t2v", {"Wan22ImageToVideoLatent"}, id="wan22-5b-t2v"),
        pytest.param("wan22-5b-i2v", {"Wan22ImageToVideoLatent", "LoadImage"},
                     id="wan22-5b-i2v"),
        pytest.param("ltxv-t2v", {"EmptyLTXVLatentVideo", "LTXVConditioning"}, id="ltxv-t2v"),
        pytest.param("ltxv-i2v", {"LTXVImgToVideo", "LTXVConditioning"}, id="ltxv-i2v"),
    ],
)  # fmt: skip
def test_video_graphs_use_the_family_nodes(name: str, classes: set[str]) -> None:
    flow = build(name)
    used = {n["class_type"] for n in flow.graph.values()}
    assert classes <= used
    assert "CheckpointLoaderSimple" not in used
    assert flow.graph[flow.output_node]["class_type"] == "SaveVideo"
    assert flow.graph[flow.output_node]["inputs"]["format"] == "mp4"
    arch = FAMILIES[CASES[name].model or ""].architecture
    assert flow.graph["2"]["inputs"]["type"] == ("ltxv" if arch == "ltxv" else "wan")


@pytest.mark.parametrize(
    ("family", "requested", "frames"),
    [
        pytest.param(WAN14, 33, 33, id="wan-exact"),
        pytest.param(WAN14, 30, 33, id="wan-rounded-up"),
        pytest.param(WAN14, 1, 1, id="wan-one-frame"),
        pytest.param(WAN22, 50, 53, id="wan22-rounded-up"),
        pytest.param(LTXV, 97, 97, id="ltxv-exact"),
        pytest.param(LTXV, 90, 97, id="ltxv-rounded-up"),
    ],
)
def test_video_frame_counts_follow_the_model(
    family: VideoFamilySpec, requested: int, frames: int
) -> None:
    flow = workflows.build_workflow(
        spec(kind="video", frames=requested, seed=1), namespace="n", job="j", family=family
    )
    assert flow.frames == frames
    assert flow.graph["20"]["inputs"]["length"] == frames


def test_ltxv_sides_are_multiples_of_32() -> None:
    flow = workflows.build_workflow(
        spec(kind="video", width=848, height=496, seed=1), namespace="n", job="j", family=LTXV
    )
    assert (flow.width, flow.height) == (832, 480)


@pytest.mark.parametrize(
    ("fields", "family", "message"),
    [
        pytest.param({"kind": "video"}, None, "no video family", id="no-family"),
        pytest.param({"kind": "video", "model": "nope"}, None, "no video family 'nope'",
                     id="unknown-family"),
        pytest.param({"kind": "video", "reference_image": "k"}, LTXV.model_copy(
            update={"modes": ["text"]}), "does not do image-to-video", id="no-i2v"),
        pytest.param({"kind": "video"}, WAN21, "needs a reference image", id="i2v-only"),
        pytest.param({"kind": "animation", "reference_image": "k"}, None,
                     "animation cannot start from a reference", id="animation-reference"),
        pytest.param({"kind": "video", "lora": LoraRef(name="add_detail.safetensors")}, WAN22,
                     "LoRAs", id="video-lora"),
    ],
)  # fmt: skip
def test_video_refusals(
    fields: dict[str, Any], family: VideoFamilySpec | None, message: str
) -> None:
    with pytest.raises(workflows.WorkflowError, match=message):
        workflows.build_workflow(spec(seed=1, **fields), namespace="n", job="j",
                                 reference_upload="r.png", family=family)  # fmt: skip


@pytest.mark.parametrize(
    ("quality", "steps", "size", "cfg", "sampler"),
    [
        pytest.param("low", 12, (768, 768), 5.0, "euler", id="low"),
        pytest.param("medium", 24, (1024, 1024), 6.5, "dpmpp_2m", id="medium"),
        pytest.param("high", 32, (1152, 1152), 7.0, "dpmpp_2m", id="high"),
        pytest.param("ultra", 48, (1536, 1536), 7.0, "dpmpp_2m_sde", id="ultra"),
    ],
)
def test_presets(quality: str, steps: int, size: tuple[int, int], cfg: float, sampler: str) -> None:
    flow = workflows.build_workflow(spec(quality=quality, seed=0), namespace="n", job="j")
    sampler_inputs = flow.graph["8"]["inputs"]
    latent = flow.graph["5"]["inputs"]
    assert (sampler_inputs["steps"], sampler_inputs["cfg"], sampler_inputs["sampler_name"]) == (
        steps, cfg, sampler)  # fmt: skip
    assert (latent["width"], latent["height"]) == size
    assert (flow.width, flow.height, flow.steps) == (*size, steps)


def test_explicit_values_override_the_preset() -> None:
    flow = workflows.build_workflow(
        spec(quality="ultra", steps=10, cfg=0.0, width=512, height=768, seed=0),
        namespace="n", job="j",
    )  # fmt: skip
    assert flow.graph["8"]["inputs"]["steps"] == 10
    assert flow.graph["8"]["inputs"]["cfg"] == 0.0  # zero is a value, not "unset"
    assert (flow.graph["5"]["inputs"]["width"], flow.graph["5"]["inputs"]["height"]) == (512, 768)


@pytest.mark.parametrize(
    ("seed", "rng_seed", "expected"),
    [
        pytest.param(42, None, 42, id="explicit-seed-kept"),
        pytest.param(0, None, 0, id="zero-is-a-seed"),
        pytest.param(-1, 7, random.Random(7).randint(0, 2**53 - 1), id="chosen-from-rng"),
    ],
)
def test_seed(seed: int, rng_seed: int | None, expected: int) -> None:
    rng = random.Random(rng_seed) if rng_seed is not None else None
    flow = workflows.build_workflow(spec(seed=seed), namespace="n", job="j", rng=rng)
    assert flow.seed == expected
    assert flow.graph["8"]["inputs"]["seed"] == expected


def test_seed_minus_one_needs_a_random_source() -> None:
    with pytest.raises(workflows.WorkflowError):
        workflows.build_workflow(spec(seed=-1), namespace="n", job="j")


def test_reference_image_needs_the_uploaded_name() -> None:
    with pytest.raises(workflows.WorkflowError):
        workflows.build_workflow(spec(reference_image="k", seed=1), namespace="n", job="j")


def test_composed_prompts_replace_the_spec_prompts() -> None:
    flow = workflows.build_workflow(
        spec(seed=1), namespace="n", job="j", positive="muse: a lighthouse", negative="ugly"
    )
    assert flow.graph["3"]["inputs"]["text"] == "muse: a lighthouse"
    assert flow.graph["4"]["inputs"]["text"] == "ugly"


def test_outputs_are_tied_to_the_job() -> None:
    flow = workflows.build_workflow(spec(seed=1), namespace="team-a", job="job-7")
    assert flow.filename_prefix == "warmpool/team-a/job-7"
    assert flow.graph[flow.output_node]["inputs"]["filename_prefix"] == "warmpool/team-a/job-7"


# ---------------------------------------------------------------- validate_graph


def _valid() -> dict[str, Any]:
    return copy.deepcopy(workflows.build_workflow(spec(seed=1), namespace="n", job="j").graph)


def _set(node: str, name: str, value: Any) -> dict[str, Any]:
    g = _valid()
    g[node]["inputs"][name] = value
    return g


def _drop(node: str, name: str) -> dict[str, Any]:
    g = _valid()
    del g[node]["inputs"][name]
    return g


def _no_output() -> dict[str, Any]:
    g = _valid()
    del g["10"]
    return g


@pytest.mark.parametrize(
    ("graph", "problem"),
    [
        pytest.param(_set("8", "steps", 0), "node 8 (KSampler): input 'steps': 0 is below the "
                     "minimum 1", id="below-min"),
        pytest.param(_set("8", "cfg", 100.5), "node 8 (KSampler): input 'cfg': 100.5 is above "
                     "the maximum 100.0", id="above-max"),
        pytest.param(_set("8", "sampler_name", "magic"), "node 8 (KSampler): input "
                     "'sampler_name': 'magic' is not a choice", id="bad-choice"),
        pytest.param(_set("1", "ckpt_name", "x.safetensors"), "node 1 (CheckpointLoaderSimple): "
                     "input 'ckpt_name': 'x.safetensors' is not a choice", id="missing-model"),
        pytest.param(_set("8", "model", ["3", 0]), "node 8 (KSampler): input 'model': expects "
                     "MODEL, node 3 gives CONDITIONING", id="link-type"),
        pytest.param(_set("8", "model", ["1", 5]), "node 8 (KSampler): input 'model': node 1 has "
                     "no output 5", id="link-slot"),
        pytest.param(_set("8", "model", ["99", 0]), "node 8 (KSampler): input 'model': links to "
                     "missing node 99", id="link-node"),
        pytest.param(_set("8", "steps", "20"), "node 8 (KSampler): input 'steps': '20' is not an "
                     "INT", id="wrong-type"),
        pytest.param(_set("8", "clip_skip", 2), "node 8 (KSampler): input 'clip_skip' is unknown",
                     id="unknown-input"),
        pytest.param(_drop("8", "seed"), "node 8 (KSampler): input 'seed' is missing",
                     id="missing-input"),
        pytest.param(_no_output(), "graph has no output node", id="no-output"),
    ],
)  # fmt: skip
def test_validate_graph_finds(graph: dict[str, Any], problem: str) -> None:
    assert workflows.validate_graph(graph, CATALOGUE) == [problem]


def test_validate_graph_reports_unknown_classes() -> None:
    g = _valid()
    g["11"] = {"class_type": "FancyCustomNode", "inputs": {}}
    assert workflows.validate_graph(g, CATALOGUE) == [
        "node 11 (FancyCustomNode): unknown node class"
    ]


# ---------------------------------------------------------------- estimate


@pytest.mark.parametrize(
    ("fields", "price", "seconds", "dollars"),
    [
        pytest.param({"quality": "medium"}, 0.36, 8.0, 0.0008, id="medium-preset"),
        pytest.param({"quality": "low"}, 0.36, 5.0, 0.0005, id="low-preset"),
        pytest.param({"quality": "medium", "batch_size": 4}, 0.36, 23.0, 0.0023, id="batch"),
        pytest.param({"quality": "medium", "steps": 48}, 0.72, 13.0, 0.0026, id="more-steps"),
        pytest.param({"quality": "medium", "width": 512, "height": 512}, 0.36, 4.25, 0.000425,
                     id="smaller"),
        pytest.param({"kind": "animation", "quality": "medium", "frames": 16}, 0.36, 23.0,
                     0.0023, id="animation-frames"),
        pytest.param({"kind": "video", "quality": "medium", "frames": 33}, 0.36, 69.0, 0.0069,
                     id="video-wan-default"),
    ],
)  # fmt: skip
def test_estimate(fields: dict[str, Any], price: float, seconds: float, dollars: float) -> None:
    result = workflows.estimate(spec(**fields), price_per_hour=price)
    assert result == workflows.Estimate(seconds=seconds, dollars=pytest.approx(dollars))


def test_estimate_scales_with_gpu_speed() -> None:
    slow = workflows.estimate(spec(), price_per_hour=1.0, speed=0.5)
    fast = workflows.estimate(spec(), price_per_hour=1.0, speed=2.0)
    assert slow.seconds - workflows.OVERHEAD_SECONDS == 4 * (
        fast.seconds - workflows.OVERHEAD_SECONDS
    )


@pytest.mark.parametrize(
    ("family", "gpu", "seconds"),
    [
        pytest.param(WAN14, "RTX 4090", 3.0 + 2.0 * 33, id="wan-4090"),
        pytest.param(WAN14, "H100 SXM", 3.0 + 2.0 * 33 / 1.9, id="wan-h100"),
        pytest.param(WAN22, "RTX 4090", 3.0 + 1.0 * 33, id="wan22-5b-4090"),
        pytest.param(LTXV, "RTX 4090", 3.0 + 0.3 * 33, id="ltxv-4090"),
        pytest.param(WAN21, "RTX 4090", 3.0 + 9.0 * 33, id="family-override"),
        pytest.param(WAN14, "NVIDIA GeForce RTX 3090", 3.0 + 2.0 * 33 / 0.55, id="comfy-name"),
    ],
)  # fmt: skip
def test_video_estimates_per_family_and_gpu(
    family: VideoFamilySpec, gpu: str, seconds: float
) -> None:
    """Seconds per frame of the family at the reference size and steps, over the GPU's
    speed: the price the studio shows for a video is what the GPU time costs."""
    job = spec(kind="video", quality="medium", frames=33)
    result = workflows.estimate(job, price_per_hour=3.6, family=family, gpu=gpu)
    assert result.seconds == pytest.approx(seconds, abs=1e-3)
    assert result.dollars == pytest.approx(seconds / 1000, abs=1e-5)


def test_video_estimate_scales_with_frames_size_and_steps() -> None:
    base = workflows.estimate(spec(kind="video", frames=33), price_per_hour=1, family=WAN14)
    more = workflows.estimate(spec(kind="video", frames=65, width=1664, steps=40),
                              price_per_hour=1, family=WAN14)  # fmt: skip
    over = workflows.OVERHEAD_SECONDS
    assert more.seconds - over == pytest.approx((base.seconds - over) * 65 / 33 * 2 * 2)
