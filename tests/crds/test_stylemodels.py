"""``template.styleModels``: every style-model file is one of the template's models.

The same rule holds in the pydantic model (studio, operator, admission webhook) and in the
CRD's CEL (the API server), checked here with the emulated API's CEL evaluator; and a
template without style models keeps the hash it had before the field existed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from warmpool.crds import schema
from warmpool.crds.generationjob import GenerationJobSpec
from warmpool.crds.gpupool import TemplateSpec
from warmpool.crds.muse import MuseSpec
from warmpool.sim.cel import CelRule

FLUX = "flux1-dev-fp8.safetensors"
REDUX = {"styleModel": "flux1-redux-dev.safetensors",
         "clipVision": "sigclip_vision_patch14_384.safetensors", "checkpoints": [FLUX]}  # fmt: skip
MODELS = [
    {"folder": "checkpoints", "file": "sd_xl_base_1.0.safetensors"},
    {"folder": "checkpoints", "file": FLUX},
    {"folder": "style_models", "file": REDUX["styleModel"]},
    {"folder": "clip_vision", "file": REDUX["clipVision"]},
]


def cel_messages(template: dict[str, Any]) -> list[str]:
    pool = schema.openapi_schema(schema.KINDS[0])
    rules = pool["properties"]["spec"]["properties"]["template"]["x-kubernetes-validations"]
    checks = [CelRule(rule=r["rule"], message=r["message"]) for r in rules]
    return [m for rule in checks if (m := rule.check(template)) is not None]


def without(folder: str) -> list[dict[str, str]]:
    return [m for m in MODELS if m["folder"] != folder]


CASES = [
    pytest.param({"models": MODELS, "styleModels": [REDUX]}, None, id="valid"),
    pytest.param({"models": MODELS}, None, id="no-style-models"),
    pytest.param({"models": without("style_models"), "styleModels": [REDUX]},
                 "template.models", id="style-model-not-a-model"),
    pytest.param({"models": without("clip_vision"), "styleModels": [REDUX]},
                 "template.models", id="clip-vision-not-a-model"),
    pytest.param({"models": MODELS, "styleModels": [{**REDUX, "checkpoints": [FLUX, "x.sft"]}]},
                 "template.models", id="checkpoint-not-a-model"),
    pytest.param({"models": [m for m in MODELS if m["file"] != FLUX], "styleModels": [REDUX]},
                 "template.models", id="only-checkpoint-not-a-model"),
]  # fmt: skip


@pytest.mark.parametrize(("template", "problem"), CASES)
def test_models_and_cel_agree(template: dict[str, Any], problem: str | None) -> None:
    messages = cel_messages(template)
    if problem is None:
        TemplateSpec.model_validate(template)
        assert messages == []
    else:
        with pytest.raises(ValidationError, match=problem):
            TemplateSpec.model_validate(template)
        assert [m for m in messages if problem in m] == [
            "every file of a style model must be listed in template.models"
        ]


@pytest.mark.parametrize(
    ("style", "field"),
    [
        pytest.param({**REDUX, "architecture": "ip-adapter"}, "architecture", id="unknown-arch"),
        pytest.param({**REDUX, "checkpoints": []}, "checkpoints", id="no-checkpoints"),
        pytest.param({**REDUX, "maxReferences": 0}, "maxReferences", id="no-references"),
        pytest.param({**REDUX, "maxReferences": 9}, "maxReferences", id="too-many-references"),
        pytest.param({**REDUX, "strengthType": "add"}, "strengthType", id="unknown-strength-type"),
        pytest.param({k: v for k, v in REDUX.items() if k != "clipVision"}, "clipVision",
                     id="no-clip-vision"),
    ],
)  # fmt: skip
def test_bad_style_models_are_refused(style: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        TemplateSpec.model_validate({"models": MODELS, "styleModels": [style]})


def test_the_flux_example_passes_the_model_and_the_cel_rules() -> None:
    path = Path(__file__).parents[2] / "crds" / "examples" / "gpupool_flux_redux.yaml"
    template = yaml.safe_load(path.read_text())["spec"]["template"]
    parsed = TemplateSpec.model_validate(template)
    assert parsed.style_model("flux1-dev-fp8.safetensors") is not None
    assert cel_messages(template) == []


def test_defaults_and_lookup_by_checkpoint() -> None:
    template = TemplateSpec.model_validate({"models": MODELS, "styleModels": [REDUX]})
    (style,) = template.style_models
    assert (style.architecture, style.max_references, style.strength_type) == (
        "flux-redux", 4, "multiply")  # fmt: skip
    assert template.style_model(FLUX) is style
    assert template.style_model("sd_xl_base_1.0.safetensors") is None


def test_a_template_without_style_models_keeps_its_hash() -> None:
    """Adding the field must not mark every running instance of an old pool as drifted
    (the first release's hash: the dump without any field added since)."""
    plain = TemplateSpec.model_validate({"models": MODELS})
    data = plain.model_dump(mode="json", by_alias=True)
    for key in ("videoFamilies", "styleModels", "checkpoints", "modelStallTimeout"):
        data.pop(key)
    for model in data["models"]:
        for key in ("sha256", "sizeBytes", "tokenSecret"):
            model.pop(key)
    before = hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:16]
    assert plain.hash() == before
    assert TemplateSpec.model_validate({"models": MODELS, "styleModels": [REDUX]}).hash() != before


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        pytest.param({"museRef": "ada", "referenceStrength": 0.5}, True, id="with-muse"),
        pytest.param({"museRef": "ada", "referenceStrength": 10}, True, id="node-maximum"),
        pytest.param({"referenceStrength": 0.5}, False, id="without-muse"),
        pytest.param({"museRef": "ada", "referenceStrength": 10.5}, False, id="above-maximum"),
        pytest.param({"museRef": "ada", "referenceStrength": -0.1}, False, id="negative"),
    ],
)
def test_a_job_reference_strength_needs_a_muse_and_the_node_bounds(
    fields: dict[str, Any], ok: bool
) -> None:
    body = {"pool": "flux", "prompt": "at the harbour", **fields}
    if ok:
        assert (
            GenerationJobSpec.model_validate(body).reference_strength == fields["referenceStrength"]
        )
    else:
        with pytest.raises(ValidationError, match=r"referenceStrength|reference_strength"):
            GenerationJobSpec.model_validate(body)


def test_a_muse_reference_strength_is_optional_and_bounded() -> None:
    assert MuseSpec.model_validate({"displayName": "Ada", "age": 30}).reference_strength is None
    with pytest.raises(ValidationError, match="referenceStrength"):
        MuseSpec.model_validate({"displayName": "Ada", "age": 30, "referenceStrength": 11})
