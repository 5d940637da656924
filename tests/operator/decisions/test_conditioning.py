"""Reference conditioning (T1, pure): which mode a job's references take, and the graph.

A muse's references condition the positive prompt through the pool's Flux Redux
(``StyleModelApply`` per reference) on the checkpoints it declares; elsewhere the first
one stays the image-to-image start. Every graph is validated against the simulator's
catalogue and the one recorded from a real ComfyUI 0.3.64.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from warmpool.crds.generationjob import GenerationJobSpec, LoraRef, ReferenceUse
from warmpool.crds.stylemodel import StyleModelSpec
from warmpool.operator.decisions import admission, conditioning, workflows
from warmpool.operator.decisions.conditioning import ReferencePlan
from warmpool.sim import comfyui_legacy
from warmpool.sim.comfyui_nodes import node_definitions

FLUX = "flux1-dev-fp8.safetensors"
SCHNELL = "flux1-schnell-fp8.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"
REDUX = StyleModelSpec(style_model="flux1-redux-dev.safetensors",
                       clip_vision="sigclip_vision_patch14_384.safetensors",
                       checkpoints=[FLUX, SCHNELL])  # fmt: skip
REDUX_2 = REDUX.model_copy(update={"max_references": 2, "strength_type": "attn_bias"})
REFS = tuple(f"uploads/studio/{'a' * 64}/{c * 64}.png" for c in "0123456789")
MODELS = {
    "checkpoints": [SDXL, FLUX, SCHNELL],
    "style_models": [REDUX.style_model],
    "clip_vision": [REDUX.clip_vision],
    "loras": ["add_detail.safetensors"],
}
INPUTS = [f"warmpool/ref-{i}.png" for i in range(10)]
CATALOGUES = {
    "sim-0.38": node_definitions(MODELS, INPUTS),
    "real-0.3.64": comfyui_legacy.node_definitions(MODELS, [i.split("/")[1] for i in INPUTS]),
}


def plan(**kw: Any) -> ReferencePlan:
    args: dict[str, Any] = {"kind": "image", "checkpoint": FLUX, "own_reference": None,
                            "muse_references": REFS[:2], "styles": [REDUX]}  # fmt: skip
    return conditioning.plan_references(**{**args, **kw})


PLANS = [
    pytest.param({}, ReferencePlan("style", references=REFS[:2], style=REDUX),
                 id="flux-two-references"),
    pytest.param({"checkpoint": SCHNELL}, ReferencePlan("style", references=REFS[:2], style=REDUX),
                 id="another-declared-checkpoint"),
    pytest.param({"muse_references": REFS}, ReferencePlan("style", references=REFS[:4],
                 style=REDUX, left_out=6), id="capped-at-max-references"),
    pytest.param({"muse_references": REFS[:3], "styles": [REDUX_2]},
                 ReferencePlan("style", references=REFS[:2], style=REDUX_2, left_out=1),
                 id="a-lower-cap"),
    pytest.param({"muse_references": (REFS[0], REFS[0], REFS[1])},
                 ReferencePlan("style", references=REFS[:2], style=REDUX), id="duplicates-once"),
    pytest.param({"own_reference": REFS[9]},
                 ReferencePlan("style", start=REFS[9], references=REFS[:2], style=REDUX),
                 id="own-start-and-conditioning"),
    pytest.param({"kind": "animation"}, ReferencePlan("style", references=REFS[:2], style=REDUX),
                 id="animation-conditioned"),
    pytest.param({"job_strength": 0.4, "muse_strength": 0.8},
                 ReferencePlan("style", references=REFS[:2], style=REDUX, strength=0.4),
                 id="job-strength-first"),
    pytest.param({"muse_strength": 0.8},
                 ReferencePlan("style", references=REFS[:2], style=REDUX, strength=0.8),
                 id="muse-strength-next"),
    pytest.param({"job_strength": 0.0},
                 ReferencePlan("style", references=REFS[:2], style=REDUX, strength=0.0),
                 id="zero-strength-is-a-value"),
    pytest.param({"checkpoint": SDXL}, ReferencePlan("start", start=REFS[0], left_out=1),
                 id="sdxl-first-reference-as-start"),
    pytest.param({"styles": []}, ReferencePlan("start", start=REFS[0], left_out=1),
                 id="pool-without-style-model"),
    pytest.param({"checkpoint": SDXL, "own_reference": REFS[9]},
                 ReferencePlan("start", start=REFS[9], left_out=2), id="own-start-wins"),
    pytest.param({"checkpoint": SDXL, "kind": "animation"}, ReferencePlan("none", left_out=2),
                 id="sdxl-animation-uses-none"),
    pytest.param({"muse_references": ()}, ReferencePlan("none"), id="muse-without-references"),
    pytest.param({"muse_references": (), "own_reference": REFS[9]},
                 ReferencePlan("none", start=REFS[9]), id="no-muse-own-start"),
    pytest.param({"kind": "video"}, ReferencePlan("none"), id="video-never-uses-muse-refs"),
    pytest.param({"kind": "video", "own_reference": REFS[9]},
                 ReferencePlan("none", start=REFS[9]), id="video-own-start"),
]  # fmt: skip


@pytest.mark.parametrize(("kw", "expected"), PLANS)
def test_plan_references(kw: dict[str, Any], expected: ReferencePlan) -> None:
    assert plan(**kw) == expected


@pytest.mark.parametrize(
    ("kw", "keys"),
    [
        pytest.param({}, list(REFS[:2]), id="style"),
        pytest.param({"own_reference": REFS[1]}, [REFS[1], REFS[0]], id="start-first-once"),
        pytest.param({"checkpoint": SDXL}, [REFS[0]], id="start-only"),
        pytest.param({"muse_references": ()}, [], id="nothing"),
    ],
)
def test_every_key_to_check_and_upload(kw: dict[str, Any], keys: list[str]) -> None:
    assert plan(**kw).artifact_keys() == keys


USES = [
    pytest.param({}, ReferenceUse(mode="style", applied=2, strength=1.0,
                                  style_model=REDUX.style_model), id="style-two"),
    pytest.param({"muse_references": REFS, "job_strength": 0.4},
                 ReferenceUse(mode="style", applied=4, left_out=6, strength=0.4,
                              style_model=REDUX.style_model), id="style-capped-job-strength"),
    pytest.param({"own_reference": REFS[9]},
                 ReferenceUse(mode="style", applied=2, strength=1.0,
                              style_model=REDUX.style_model), id="style-with-own-start"),
    pytest.param({"checkpoint": SDXL}, ReferenceUse(mode="start", applied=1, left_out=1),
                 id="start-from-the-first"),
    pytest.param({"checkpoint": SDXL, "own_reference": REFS[9]},
                 ReferenceUse(mode="start", applied=0, left_out=2), id="own-start-muse-unused"),
    pytest.param({"checkpoint": SDXL, "kind": "animation"},
                 ReferenceUse(mode="none", applied=0, left_out=2), id="animation-unused"),
    pytest.param({"muse_references": ()}, None, id="no-references-nothing-recorded"),
    pytest.param({"kind": "video"}, None, id="video-nothing-recorded"),
]  # fmt: skip


@pytest.mark.parametrize(("kw", "expected"), USES)
def test_reference_use_recorded_in_status(
    kw: dict[str, Any], expected: ReferenceUse | None
) -> None:
    """What a finished job's ``status.references`` says it did with the muse's references."""
    use = conditioning.reference_use(plan(**kw), own_reference=kw.get("own_reference"))
    assert use == expected


def spec(**fields: Any) -> GenerationJobSpec:
    base = {"pool": "flux", "prompt": "Ada at the harbour", "museRef": "ada", "model": FLUX,
            "seed": 7}  # fmt: skip
    return GenerationJobSpec.model_validate({**base, **fields})


def build(job: GenerationJobSpec, refs: tuple[str, ...], styles: list[StyleModelSpec],
          ) -> workflows.Workflow:  # fmt: skip
    p = conditioning.plan_references(
        kind=job.kind, checkpoint=job.model or workflows.DEFAULT_CHECKPOINT,
        own_reference=job.reference_image, muse_references=refs, styles=styles,
        job_strength=job.reference_strength,
    )  # fmt: skip
    uploads = {k: INPUTS[REFS.index(k)] for k in p.artifact_keys()}
    job = job.model_copy(update={"reference_image": p.start})
    return workflows.build_workflow(job, namespace="studio", job="j",
                                    reference_upload=uploads.get(p.start or ""),
                                    style=conditioning.style_inputs(p, uploads))  # fmt: skip


def classes(graph: dict[str, Any]) -> list[str]:
    return sorted(n["class_type"] for n in graph.values())


TXT2IMG = ["CLIPTextEncode", "CLIPTextEncode", "CheckpointLoaderSimple", "EmptyLatentImage",
           "KSampler", "SaveImage", "VAEDecode"]  # fmt: skip
I2I = ["CLIPTextEncode", "CLIPTextEncode", "CheckpointLoaderSimple", "ImageScale", "KSampler",
       "LoadImage", "SaveImage", "VAEDecode", "VAEEncode"]  # fmt: skip


def redux(n: int) -> list[str]:
    return ["CLIPVisionEncode"] * n + ["CLIPVisionLoader"] + ["LoadImage"] * n + (
        ["StyleModelApply"] * n) + ["StyleModelLoader"]  # fmt: skip


GRAPHS = [
    pytest.param(spec(), REFS[:2], [REDUX], sorted(TXT2IMG + redux(2)), id="redux-two"),
    pytest.param(spec(), REFS[:1], [REDUX], sorted(TXT2IMG + redux(1)), id="redux-one"),
    pytest.param(spec(), REFS, [REDUX], sorted(TXT2IMG + redux(4)), id="redux-capped-4"),
    pytest.param(spec(), REFS, [REDUX.model_copy(update={"max_references": 8})],
                 sorted(TXT2IMG + redux(8)), id="redux-capped-8"),
    pytest.param(spec(), (), [REDUX], TXT2IMG, id="no-references-no-nodes"),
    pytest.param(spec(model=SDXL), REFS[:2], [REDUX], I2I, id="sdxl-img2img-start"),
    pytest.param(spec(), REFS[:2], [], I2I, id="no-style-model-img2img-start"),
    pytest.param(spec(referenceImage=REFS[9], denoise=0.5), REFS[:2], [REDUX],
                 sorted(I2I + redux(2)), id="redux-and-own-start"),
    pytest.param(spec(lora=LoraRef(name="add_detail.safetensors")), REFS[:2], [REDUX],
                 sorted([*TXT2IMG, "LoraLoader", *redux(2)]), id="redux-with-lora"),
    pytest.param(spec(kind="animation", frames=8), REFS[:2], [REDUX],
                 sorted([c for c in TXT2IMG if c != "SaveImage"] + ["SaveAnimatedWEBP"]
                        + redux(2)), id="redux-animation"),
    pytest.param(spec(batchSize=3, quality="low"), REFS[:3], [REDUX], sorted(TXT2IMG + redux(3)),
                 id="redux-batch"),
]  # fmt: skip


@pytest.mark.parametrize("catalogue", list(CATALOGUES))
@pytest.mark.parametrize(("job", "refs", "styles", "expected"), GRAPHS)
def test_graphs_have_the_nodes_and_validate(
    job: GenerationJobSpec, refs: tuple[str, ...], styles: list[StyleModelSpec],
    expected: list[str], catalogue: str,
) -> None:  # fmt: skip
    flow = build(job, refs, styles)
    assert classes(flow.graph) == expected
    assert workflows.validate_graph(flow.graph, CATALOGUES[catalogue]) == []


def test_the_chain_applies_every_reference_in_order_onto_the_positive_prompt() -> None:
    graph = build(spec(referenceStrength=0.35), REFS[:3], [REDUX_2.model_copy(
        update={"max_references": 3})]).graph  # fmt: skip
    sampler = graph["8"]["inputs"]
    link = sampler["positive"]
    chain = []
    while graph[link[0]]["class_type"] == "StyleModelApply":
        node = graph[link[0]]["inputs"]
        chain.append(node)
        link = node["conditioning"]
    assert link == ["3", 0]  # ends at the composed positive text
    assert sampler["negative"] == ["4", 0]  # the negative is never conditioned
    assert len(chain) == 3
    images = []
    for node in reversed(chain):
        assert (node["strength"], node["strength_type"]) == (0.35, "attn_bias")
        assert graph[node["style_model"][0]] == {
            "class_type": "StyleModelLoader",
            "inputs": {"style_model_name": "flux1-redux-dev.safetensors"},
        }
        encode = graph[node["clip_vision_output"][0]]
        assert encode["class_type"] == "CLIPVisionEncode"
        assert encode["inputs"]["crop"] == "center"
        assert graph[encode["inputs"]["clip_vision"][0]]["inputs"] == {
            "clip_name": "sigclip_vision_patch14_384.safetensors"
        }
        images.append(graph[encode["inputs"]["image"][0]]["inputs"]["image"])
    assert images == INPUTS[:3]  # the muse's order
    assert graph["5"]["class_type"] == "EmptyLatentImage"  # text-to-image, not a start
    assert sampler["denoise"] == 1.0


def test_the_default_strength_is_the_node_default_of_the_real_catalogue() -> None:
    real = CATALOGUES["real-0.3.64"]["StyleModelApply"]["input"]["required"]
    assert real["strength"][1]["default"] == conditioning.DEFAULT_REFERENCE_STRENGTH
    assert real["strength"][1]["max"] == 10.0  # the CRD bound (MAX_STRENGTH)
    assert real["strength_type"][0] == ["multiply", "attn_bias"]  # the CRD enum
    graph = build(spec(), REFS[:1], [REDUX]).graph
    (apply,) = [n for n in graph.values() if n["class_type"] == "StyleModelApply"]
    assert (apply["inputs"]["strength"], apply["inputs"]["strength_type"]) == (1.0, "multiply")


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        pytest.param(lambda g: g["50"]["inputs"].update(style_model_name="gone.safetensors"),
                     "style_model_name", id="style-model-not-installed"),
        pytest.param(lambda g: g["51"]["inputs"].update(clip_name="gone.safetensors"),
                     "clip_name", id="clip-vision-not-installed"),
        pytest.param(lambda g: g["54"]["inputs"].update(strength=11.0), "above the maximum",
                     id="strength-above-max"),
        pytest.param(lambda g: g["54"]["inputs"].update(strength_type="add"), "strength_type",
                     id="unknown-strength-type"),
        pytest.param(lambda g: g["53"]["inputs"].pop("crop"), "crop", id="crop-required"),
        pytest.param(lambda g: g["54"]["inputs"].update(clip_vision_output=["51", 0]),
                     "expects CLIP_VISION_OUTPUT", id="vision-model-is-not-its-output"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("catalogue", list(CATALOGUES))
def test_the_catalogue_refuses_broken_redux_graphs(mutate: Any, problem: str,
                                                   catalogue: str) -> None:  # fmt: skip
    graph = copy.deepcopy(build(spec(), REFS[:2], [REDUX]).graph)
    mutate(graph)
    problems = workflows.validate_graph(graph, CATALOGUES[catalogue])
    assert len(problems) == 1 and problem in problems[0], problems


def test_a_video_job_refuses_style_inputs() -> None:
    style = conditioning.StyleInputs("r.sft", "v.sft", ("warmpool/a.png",), 1.0, "multiply")
    with pytest.raises(workflows.WorkflowError, match="image and animation"):
        workflows.build_workflow(spec(kind="video"), namespace="n", job="j", style=style)


def test_style_inputs_only_for_the_style_mode() -> None:
    uploads = {k: f"warmpool/{i}.png" for i, k in enumerate(REFS)}
    assert conditioning.style_inputs(plan(checkpoint=SDXL), uploads) is None
    assert conditioning.style_inputs(plan(muse_references=()), uploads) is None
    assert conditioning.style_inputs(plan(), uploads) == conditioning.StyleInputs(
        REDUX.style_model, REDUX.clip_vision, ("warmpool/0.png", "warmpool/1.png"), 1.0,
        "multiply")  # fmt: skip


@pytest.mark.parametrize(
    ("styles", "checkpoint", "kind", "found"),
    [
        pytest.param([REDUX], FLUX, "image", REDUX, id="image"),
        pytest.param([REDUX], FLUX, "animation", REDUX, id="animation"),
        pytest.param([REDUX], FLUX, "video", None, id="video"),
        pytest.param([REDUX], SDXL, "image", None, id="other-checkpoint"),
        pytest.param([REDUX_2.model_copy(update={"checkpoints": [SDXL]}), REDUX], FLUX, "image",
                     REDUX, id="the-one-for-the-checkpoint"),
        pytest.param([REDUX, REDUX_2], FLUX, "image", REDUX, id="the-first"),
    ],
)  # fmt: skip
def test_style_for(styles: list[StyleModelSpec], checkpoint: str, kind: str,
                   found: StyleModelSpec | None) -> None:  # fmt: skip
    assert conditioning.style_for(styles, checkpoint, kind) == found


def test_the_admission_webhook_refuses_a_style_model_whose_files_are_not_models() -> None:
    """The pool's validator, not only the CEL rule: the webhook denies it too."""
    models = [{"folder": "checkpoints", "file": FLUX},
              {"folder": "style_models", "file": REDUX.style_model}]  # fmt: skip
    style = REDUX.model_dump(mode="json", by_alias=True)
    body = {
        "metadata": {"name": "flux"},
        "spec": {"replicas": 1, "template": {"models": models, "styleModels": [style]}},
    }
    denial = admission.check_pool(body)
    assert denial is not None and denial.code == 422
    assert denial.field == "spec.template"
    assert "clip_vision/sigclip_vision_patch14_384.safetensors is not in template.models" in (
        denial.reason
    )
    models.append({"folder": "clip_vision", "file": REDUX.clip_vision})
    models.append({"folder": "checkpoints", "file": SCHNELL})
    assert admission.check_pool(body) is None
