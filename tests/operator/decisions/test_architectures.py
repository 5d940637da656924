"""Image architectures (T1, pure): a Flux checkpoint is run the Flux way.

The story: a Flux checkpoint run the SDXL way (a negative prompt, CFG 6-7, dpmpp_2m/karras)
gives poor images at twice the cost. A pool now declares its checkpoints' architecture;
flux-dev gets FluxGuidance and KSampler at CFG 1 with euler/simple, schnell 4 steps without
guidance, both a zeroed negative. Every graph is validated against the simulator's
catalogue and the one recorded from a real ComfyUI 0.3.64.
"""

from __future__ import annotations

from typing import Any

import pytest

from warmpool.crds.checkpoint import CheckpointSpec
from warmpool.crds.generationjob import GenerationJobSpec, LoraRef
from warmpool.crds.gpupool import ModelSpec
from warmpool.operator.decisions import architectures, conditioning, workflows
from warmpool.sim import comfyui_legacy
from warmpool.sim.comfyui_nodes import node_definitions

FLUX = "flux1-dev-fp8.safetensors"
SCHNELL = "flux1-schnell-fp8.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"
DEV = CheckpointSpec(name=FLUX, architecture="flux-dev")
FAST = CheckpointSpec(name=SCHNELL, architecture="flux-schnell")
SPLIT = CheckpointSpec(name="flux1-dev", architecture="flux-dev",
                       diffusionModel="flux1-dev.safetensors", clipL="clip_l.safetensors",
                       t5xxl="t5xxl_fp16.safetensors", vae="ae.safetensors",
                       weightDtype="fp8_e4m3fn")  # fmt: skip
MODELS = {
    "checkpoints": [SDXL, FLUX, SCHNELL],
    "diffusion_models": ["flux1-dev.safetensors"],
    "text_encoders": ["clip_l.safetensors", "t5xxl_fp16.safetensors"],
    "vae": ["ae.safetensors"],
    "style_models": ["flux1-redux-dev.safetensors"],
    "clip_vision": ["sigclip_vision_patch14_384.safetensors"],
    "loras": ["flux_realism.safetensors"],
}
INPUTS = ["warmpool/ref-0.png", "warmpool/ref-1.png"]
CATALOGUES = {
    "sim-0.38": node_definitions(MODELS, INPUTS),
    "real-0.3.64": comfyui_legacy.node_definitions(MODELS, [i.split("/")[1] for i in INPUTS]),
}


def spec(**kw: Any) -> GenerationJobSpec:
    base: dict[str, Any] = {"pool": "flux", "prompt": "a lighthouse at dusk", "model": FLUX,
                            "seed": 7, "negativePrompt": "blurry"}  # fmt: skip
    return GenerationJobSpec.model_validate({**base, **kw})


def build(job: GenerationJobSpec, ckpt: CheckpointSpec | None, **kw: Any) -> workflows.Workflow:
    return workflows.build_workflow(job, namespace="default", job="j", checkpoint=ckpt, **kw)


def classes(graph: dict[str, Any]) -> list[str]:
    return sorted(n["class_type"] for n in graph.values())


TXT2IMG_FLUX = sorted(["CheckpointLoaderSimple", "CLIPTextEncode", "ConditioningZeroOut",
                       "FluxGuidance", "EmptySD3LatentImage", "KSampler", "VAEDecode",
                       "SaveImage"])  # fmt: skip
SPLIT_LOADERS = ["DualCLIPLoader", "UNETLoader", "VAELoader"]
GRAPHS = [
    pytest.param(spec(), DEV, TXT2IMG_FLUX, id="flux-dev"),
    pytest.param(spec(model=SCHNELL), FAST,
                 [c for c in TXT2IMG_FLUX if c != "FluxGuidance"], id="flux-schnell"),
    pytest.param(spec(model="flux1-dev"), SPLIT,
                 sorted([c for c in TXT2IMG_FLUX if c != "CheckpointLoaderSimple"]
                        + SPLIT_LOADERS), id="flux-dev-split"),
    pytest.param(spec(lora=LoraRef(name="flux_realism.safetensors", strength=0.8)), DEV,
                 sorted([*TXT2IMG_FLUX, "LoraLoader"]), id="flux-lora"),
    pytest.param(spec(model="flux1-dev", lora=LoraRef(name="flux_realism.safetensors")), SPLIT,
                 sorted([c for c in TXT2IMG_FLUX if c != "CheckpointLoaderSimple"]
                        + SPLIT_LOADERS + ["LoraLoader"]), id="flux-split-lora"),
    pytest.param(spec(referenceImage="uploads/x.png", denoise=0.7), DEV,
                 sorted([c for c in TXT2IMG_FLUX if c != "EmptySD3LatentImage"]
                        + ["ImageScale", "LoadImage", "VAEEncode"]), id="flux-img2img"),
    pytest.param(spec(model="flux1-dev", referenceImage="uploads/x.png"), SPLIT,
                 sorted([c for c in TXT2IMG_FLUX
                         if c not in ("EmptySD3LatentImage", "CheckpointLoaderSimple")]
                        + SPLIT_LOADERS + ["ImageScale", "LoadImage", "VAEEncode"]),
                 id="flux-split-img2img"),
    pytest.param(spec(kind="animation", frames=8), DEV,
                 sorted([c for c in TXT2IMG_FLUX if c != "SaveImage"] + ["SaveAnimatedWEBP"]),
                 id="flux-animation"),
    pytest.param(spec(model=SDXL), None,
                 sorted(["CheckpointLoaderSimple", "CLIPTextEncode", "CLIPTextEncode",
                         "EmptyLatentImage", "KSampler", "VAEDecode", "SaveImage"]),
                 id="undeclared-is-sdxl"),
]  # fmt: skip


@pytest.mark.parametrize("catalogue", list(CATALOGUES))
@pytest.mark.parametrize(("job", "ckpt", "expected"), GRAPHS)
def test_graphs_have_the_nodes_and_validate(
    job: GenerationJobSpec, ckpt: CheckpointSpec | None, expected: list[str], catalogue: str
) -> None:
    upload = "warmpool/ref-0.png" if job.reference_image else None
    flow = build(job, ckpt, reference_upload=upload)
    assert classes(flow.graph) == expected
    assert workflows.validate_graph(flow.graph, CATALOGUES[catalogue]) == []


SAMPLER = [
    pytest.param(spec(), DEV, {"cfg": 1.0, "sampler_name": "euler", "scheduler": "simple",
                               "steps": 20}, 3.5, id="dev-medium"),
    pytest.param(spec(quality="low"), DEV, {"cfg": 1.0, "steps": 16}, 3.5, id="dev-low"),
    pytest.param(spec(cfg=2.5), DEV, {"cfg": 1.0}, 2.5, id="dev-cfg-is-guidance"),
    pytest.param(spec(), DEV.model_copy(update={"guidance": 4.0}), {"cfg": 1.0}, 4.0,
                 id="dev-pool-guidance"),
    pytest.param(spec(cfg=5.0), DEV.model_copy(update={"guidance": 4.0}), {"cfg": 1.0}, 5.0,
                 id="job-cfg-over-pool-guidance"),
    pytest.param(spec(model=SCHNELL, quality="ultra"), FAST,
                 {"cfg": 1.0, "steps": 4, "sampler_name": "euler", "scheduler": "simple"}, None,
                 id="schnell-4-steps"),
    pytest.param(spec(model=SCHNELL, cfg=3.0), FAST, {"cfg": 1.0}, None, id="schnell-no-guidance"),
    pytest.param(spec(steps=30, sampler="dpmpp_2m", scheduler="beta"), DEV,
                 {"cfg": 1.0, "steps": 30, "sampler_name": "dpmpp_2m", "scheduler": "beta"}, 3.5,
                 id="explicit-settings-kept"),
    pytest.param(spec(model=SDXL, cfg=6.0), None, {"cfg": 6.0, "scheduler": "karras"}, None,
                 id="sdxl-cfg-is-cfg"),
]  # fmt: skip


@pytest.mark.parametrize(("job", "ckpt", "sampler", "guidance"), SAMPLER)
def test_sampler_settings_and_guidance(
    job: GenerationJobSpec, ckpt: CheckpointSpec | None, sampler: dict[str, Any],
    guidance: float | None,
) -> None:  # fmt: skip
    graph = build(job, ckpt).graph
    assert {k: graph["8"]["inputs"][k] for k in sampler} == sampler
    found = [n["inputs"]["guidance"] for n in graph.values() if n["class_type"] == "FluxGuidance"]
    assert found == ([] if guidance is None else [guidance])


def test_the_flux_chain_prompt_guidance_sampler_and_zeroed_negative() -> None:
    graph = build(spec(), DEV).graph
    assert graph["3"]["inputs"] == {"text": "a lighthouse at dusk", "clip": ["1", 1]}
    assert graph["11"]["inputs"]["conditioning"] == ["3", 0]
    assert graph["8"]["inputs"]["positive"] == ["11", 0]
    assert graph["4"] == {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["3", 0]}}
    assert graph["8"]["inputs"]["negative"] == ["4", 0]
    assert "blurry" not in str(graph)  # the negative prompt reaches no node


def test_split_files_are_loaded_by_their_loaders() -> None:
    graph = build(spec(model="flux1-dev", referenceImage="uploads/x.png"), SPLIT,
                  reference_upload="warmpool/ref-0.png").graph  # fmt: skip
    assert graph["1"]["inputs"] == {"unet_name": "flux1-dev.safetensors",
                                    "weight_dtype": "fp8_e4m3fn"}  # fmt: skip
    assert graph["13"]["inputs"] == {
        "clip_name1": "clip_l.safetensors", "clip_name2": "t5xxl_fp16.safetensors", "type": "flux",
    }  # fmt: skip
    assert graph["3"]["inputs"]["clip"] == ["13", 0]
    assert graph["7"]["inputs"]["vae"] == graph["9"]["inputs"]["vae"] == ["14", 0]
    assert graph["8"]["inputs"]["model"] == ["1", 0]


def test_redux_applies_after_flux_guidance_as_in_the_comfy_template() -> None:
    """ComfyUI's flux_redux_model_example: CLIPTextEncode → FluxGuidance → StyleModelApply
    (chained per image) → the guider."""
    style = conditioning.StyleInputs(style_model="flux1-redux-dev.safetensors",
                                     clip_vision="sigclip_vision_patch14_384.safetensors",
                                     images=tuple(INPUTS), strength=1.0,
                                     strength_type="multiply")  # fmt: skip
    flow = build(spec(), DEV, style=style)
    g = flow.graph
    assert g["11"]["inputs"]["conditioning"] == ["3", 0]
    assert g["54"]["inputs"]["conditioning"] == ["11", 0]
    assert g["57"]["inputs"]["conditioning"] == ["54", 0]
    assert g["8"]["inputs"]["positive"] == ["57", 0]
    assert g["4"]["inputs"]["conditioning"] == ["3", 0]  # the negative: no reference in it
    for catalogue in CATALOGUES.values():
        assert workflows.validate_graph(g, catalogue) == []


NOTES = [
    pytest.param(DEV, {"negative": "blurry", "cfg": None}, [architectures.NEGATIVE_IGNORED],
                 id="negative-ignored"),
    pytest.param(DEV, {"negative": "  ", "cfg": 3.0}, [architectures.CFG_IS_GUIDANCE],
                 id="cfg-is-guidance"),
    pytest.param(FAST, {"negative": "x", "cfg": 3.0},
                 [architectures.NEGATIVE_IGNORED, architectures.CFG_IGNORED], id="schnell"),
    pytest.param(None, {"negative": "blurry", "cfg": 7.0}, [], id="sdxl-nothing"),
    pytest.param(CheckpointSpec(name=SDXL, architecture="sdxl"), {"negative": "b", "cfg": 7.0},
                 [], id="declared-sdxl-nothing"),
]  # fmt: skip


@pytest.mark.parametrize(("ckpt", "kw", "expected"), NOTES)
def test_notes(ckpt: CheckpointSpec | None, kw: dict[str, Any], expected: list[str]) -> None:
    assert list(architectures.notes_for(ckpt, kind="image", **kw)) == expected


def test_the_workflow_carries_the_notes_of_the_composed_negative() -> None:
    flow = build(spec(negativePrompt=""), DEV, negative="lowres, from the muse")
    assert flow.notes == (architectures.NEGATIVE_IGNORED,)
    assert flow.architecture == "flux-dev"


ESTIMATES = [
    pytest.param(spec(model=SDXL), None, 3.0 + 5.0, id="sdxl-medium"),
    pytest.param(spec(), DEV, 3.0 + 11.0, id="flux-dev-medium"),
    pytest.param(spec(quality="low"), DEV, 3.0 + 5.0, id="flux-dev-low"),
    pytest.param(spec(steps=40), DEV, 3.0 + 22.0, id="flux-dev-steps-scale"),
    pytest.param(spec(model=SCHNELL), FAST, 3.0 + 2.2, id="flux-schnell-medium"),
]  # fmt: skip


@pytest.mark.parametrize(("job", "ckpt", "seconds"), ESTIMATES)
def test_estimates_per_architecture(
    job: GenerationJobSpec, ckpt: CheckpointSpec | None, seconds: float
) -> None:
    est = workflows.estimate(job, price_per_hour=3.6, checkpoint=ckpt)
    assert est.seconds == pytest.approx(seconds)
    assert est.dollars == pytest.approx(seconds / 1000)


def test_schnell_is_faster_than_dev_and_dev_slower_than_sdxl() -> None:
    def secs(model: str, ckpt: CheckpointSpec | None) -> float:
        return workflows.estimate(spec(model=model), price_per_hour=1, checkpoint=ckpt).seconds

    assert secs(SCHNELL, FAST) < secs(SDXL, None) < secs(FLUX, DEV)


def test_every_architecture_has_every_quality() -> None:
    for presets in architectures.ARCHITECTURE_PRESETS.values():
        assert set(presets) == set(workflows.PRESETS)
        assert all(p.width % 16 == 0 and p.height % 16 == 0 for p in presets.values())


def model(folder: str, file: str) -> ModelSpec:
    return ModelSpec(folder=folder, file=file)


FLUX_ONLY = [model("checkpoints", SCHNELL), model("diffusion_models", "flux1-dev.safetensors")]
DEFAULTS = [
    pytest.param([], [], SDXL, id="nothing-declared-the-old-default"),
    pytest.param([], [model("loras", "x.safetensors")], SDXL, id="no-checkpoint-file"),
    pytest.param(
        [],
        [model("vae", "ae.safetensors"), model("checkpoints", FLUX), model("checkpoints", SDXL)],
        FLUX,
        id="first-checkpoints-file",
    ),
    pytest.param([FAST, SPLIT], FLUX_ONLY, SCHNELL, id="first-declared"),
    pytest.param([SPLIT, FAST], FLUX_ONLY, "flux1-dev", id="declared-split-before-files"),
    pytest.param(
        [DEV],
        [model("checkpoints", SDXL), model("checkpoints", FLUX)],
        FLUX,
        id="declared-before-an-sdxl-file",
    ),
]


@pytest.mark.parametrize(("declared", "models", "expected"), DEFAULTS)
def test_default_checkpoint(
    declared: list[CheckpointSpec], models: list[ModelSpec], expected: str
) -> None:
    assert architectures.default_checkpoint(declared, models) == expected
    assert workflows.default_checkpoint is architectures.default_checkpoint
