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
from warmpool.operator.decisions import workflows
from warmpool.sim.comfyui_nodes import node_definitions

GOLDEN = Path(__file__).parent / "golden"
CATALOGUE = node_definitions(
    {"checkpoints": ["sd_xl_base_1.0.safetensors", "juggernautXL_v9.safetensors"],
     "loras": ["add_detail.safetensors"]},
    ["warmpool/ref.png"],
)  # fmt: skip


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
    "video": spec(kind="video", frames=24, fps=12, seed=2),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_golden_graphs(name: str) -> None:
    flow = workflows.build_workflow(
        CASES[name], namespace="studio", job=f"job-{name}", reference_upload="warmpool/ref.png"
    )
    path = GOLDEN / f"{name}.json"
    if os.environ.get("WARMPOOL_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(flow.graph, indent=2, sort_keys=True) + "\n")
    assert flow.graph == json.loads(path.read_text())


@pytest.mark.parametrize("name", list(CASES))
def test_every_builder_output_is_valid_against_the_catalogue(name: str) -> None:
    flow = workflows.build_workflow(
        CASES[name], namespace="ns", job="j", reference_upload="warmpool/ref.png"
    )
    assert workflows.validate_graph(flow.graph, CATALOGUE) == []


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
        pytest.param({"kind": "video", "quality": "medium", "frames": 16}, 0.36, 23.0, 0.0023,
                     id="video-frames"),
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
