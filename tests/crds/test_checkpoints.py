"""``template.checkpoints``: how each image checkpoint is run, all-in-one or split Flux files.

The same rules hold in the pydantic model (studio, operator, admission webhook) and in the
CRD's CEL (the API server), checked here with the emulated API's CEL evaluator; declaring
checkpoints changes no template hash (the graphs change, not the machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from warmpool.crds import schema
from warmpool.crds.gpupool import TemplateSpec
from warmpool.sim.cel import CelRule

FLUX = "flux1-dev-fp8.safetensors"
SPLIT = {"name": "flux1-dev", "architecture": "flux-dev",
         "diffusionModel": "flux1-dev.safetensors", "clipL": "clip_l.safetensors",
         "t5xxl": "t5xxl_fp16.safetensors", "vae": "ae.safetensors"}  # fmt: skip
MODELS = [
    {"folder": "checkpoints", "file": "sd_xl_base_1.0.safetensors"},
    {"folder": "checkpoints", "file": FLUX},
    {"folder": "diffusion_models", "file": "flux1-dev.safetensors"},
    {"folder": "text_encoders", "file": "clip_l.safetensors"},
    {"folder": "text_encoders", "file": "t5xxl_fp16.safetensors"},
    {"folder": "vae", "file": "ae.safetensors"},
    {"folder": "style_models", "file": "flux1-redux-dev.safetensors"},
    {"folder": "clip_vision", "file": "sigclip_vision_patch14_384.safetensors"},
]
REDUX = {"styleModel": "flux1-redux-dev.safetensors",
         "clipVision": "sigclip_vision_patch14_384.safetensors"}  # fmt: skip
DEV = {"name": FLUX, "architecture": "flux-dev"}


def _template_schema() -> dict[str, Any]:
    pool = schema.openapi_schema(schema.KINDS[0])
    return pool["properties"]["spec"]["properties"]["template"]  # type: ignore[no-any-return]


def cel_messages(template: dict[str, Any]) -> list[str]:
    """Every CEL message the API server would give: the template's rules and each
    checkpoint's own."""
    tpl = _template_schema()
    item_rules = tpl["properties"]["checkpoints"]["items"]["x-kubernetes-validations"]
    found = [
        m
        for r in tpl["x-kubernetes-validations"]
        if (m := CelRule(rule=r["rule"], message=r["message"]).check(template)) is not None
    ]
    for item in template.get("checkpoints", []):
        found += [
            m
            for r in item_rules
            if (m := CelRule(rule=r["rule"], message=r["message"]).check(item)) is not None
        ]
    return found  # fmt: skip


def without(file: str) -> list[dict[str, str]]:
    return [m for m in MODELS if m["file"] != file]


CASES = [
    pytest.param({"models": MODELS, "checkpoints": [DEV, SPLIT]}, None, id="valid"),
    pytest.param({"models": MODELS}, None, id="none-declared"),
    pytest.param({"models": MODELS, "checkpoints": [
        {"name": "sd_xl_base_1.0.safetensors", "architecture": "sdxl"}]}, None, id="sdxl"),
    pytest.param({"models": without(FLUX), "checkpoints": [DEV]},
                 "every file of a checkpoint must be listed", id="all-in-one-not-a-model"),
    pytest.param({"models": without("ae.safetensors"), "checkpoints": [SPLIT]},
                 "every file of a checkpoint must be listed", id="split-vae-not-a-model"),
    pytest.param({"models": without("t5xxl_fp16.safetensors"), "checkpoints": [SPLIT]},
                 "every file of a checkpoint must be listed", id="split-t5-not-a-model"),
    pytest.param({"models": MODELS, "checkpoints": [DEV, {**DEV, "architecture": "flux-schnell"}]},
                 "checkpoint names must be unique", id="names-unique"),
    pytest.param({"models": MODELS,
                  "checkpoints": [{k: v for k, v in SPLIT.items() if k != "vae"}]},
                 "split files come together", id="split-incomplete"),
    pytest.param({"models": MODELS, "checkpoints": [{**SPLIT, "architecture": "sdxl"}]},
                 "split files (diffusionModel, clipL, t5xxl, vae) are for Flux", id="split-sdxl"),
    pytest.param({"models": MODELS, "checkpoints": [SPLIT],
                  "styleModels": [{**REDUX, "checkpoints": [FLUX, "flux1-dev"]}]},
                 None, id="redux-on-a-split-checkpoint"),
    pytest.param({"models": MODELS, "checkpoints": [{**DEV, "architecture": "sdxl"}],
                  "styleModels": [{**REDUX, "checkpoints": [FLUX]}]},
                 "conditions Flux checkpoints", id="redux-on-sdxl"),
    pytest.param({"models": MODELS, "styleModels": [{**REDUX, "checkpoints": ["flux1-dev"]}]},
                 "every file of a style model", id="redux-on-an-undeclared-name"),
]  # fmt: skip


@pytest.mark.parametrize(("template", "problem"), CASES)
def test_models_and_cel_agree(template: dict[str, Any], problem: str | None) -> None:
    messages = cel_messages(template)
    if problem is None:
        TemplateSpec.model_validate(template)
        assert messages == []
    else:
        with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            TemplateSpec.model_validate(template)
        assert [m for m in messages if problem in m] != []


@pytest.mark.parametrize(
    ("checkpoint", "field"),
    [
        pytest.param({**DEV, "architecture": "sd3"}, "architecture", id="unknown-architecture"),
        pytest.param({**SPLIT, "weightDtype": "int4"}, "weightDtype", id="unknown-dtype"),
        pytest.param({**DEV, "guidance": 101}, "guidance", id="guidance-above-node-maximum"),
        pytest.param({"architecture": "flux-dev"}, "name", id="no-name"),
    ],
)  # fmt: skip
def test_bad_checkpoints_are_refused(checkpoint: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        TemplateSpec.model_validate({"models": MODELS, "checkpoints": [checkpoint]})


def test_how_a_checkpoint_is_run() -> None:
    template = TemplateSpec.model_validate({
        "models": MODELS, "checkpoints": [SPLIT],
        "styleModels": [{**REDUX, "checkpoints": [FLUX]}],
    })  # fmt: skip
    assert template.checkpoint("flux1-dev").split
    assert template.checkpoint(FLUX).architecture == "flux-dev"  # named by Flux Redux
    assert template.checkpoint("sd_xl_base_1.0.safetensors").architecture == "sdxl"
    assert template.image_checkpoints() == ["sd_xl_base_1.0.safetensors", FLUX, "flux1-dev"]


def test_declaring_checkpoints_changes_no_hash() -> None:
    """Running instances of a pool that declares (or re-declares) its checkpoints' architecture
    are not drifted: the files on the machine are the same."""
    plain = TemplateSpec.model_validate({"models": MODELS})
    declared = TemplateSpec.model_validate({"models": MODELS, "checkpoints": [DEV, SPLIT]})
    assert declared.hash() == plain.hash()


@pytest.mark.parametrize("example", ["gpupool_flux.yaml", "gpupool_flux_redux.yaml"])
def test_the_flux_examples_pass_the_model_and_the_cel_rules(example: str) -> None:
    path = Path(__file__).parents[2] / "crds" / "examples" / example
    template = yaml.safe_load(path.read_text())["spec"]["template"]
    parsed = TemplateSpec.model_validate(template)
    assert cel_messages(template) == []
    assert {parsed.checkpoint(n).architecture for n in parsed.image_checkpoints()} <= {
        "flux-dev", "flux-schnell"}  # fmt: skip


def test_the_crd_fields_are_the_names_the_rules_and_examples_use() -> None:
    """Regression: the camelCase alias made ``t5xxl`` into ``t5Xxl`` in the CRD, so the API
    server refused every split checkpoint ("split files come together") while the model
    accepted it by its field name."""
    items = _template_schema()["properties"]["checkpoints"]["items"]["properties"]
    assert set(items) == {"name", "architecture", "diffusionModel", "clipL", "t5xxl", "vae",
                          "weightDtype", "guidance"}  # fmt: skip
