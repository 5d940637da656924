"""``template.videoFamilies``: every family file is one of the template's models; names unique.

The same rules hold in the pydantic models (studio, operator) and in the CRD's CEL
(the API server), checked here with the emulated API's CEL evaluator.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from warmpool.crds import schema
from warmpool.crds.gpupool import GpuPoolSpec, TemplateSpec
from warmpool.sim.cel import CelRule

WAN = {
    "name": "wan22-5b",
    "architecture": "wan22",
    "modes": ["text", "image"],
    "diffusionModel": "wan2.2_ti2v_5B_fp16.safetensors",
    "textEncoder": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
    "vae": "wan2.2_vae.safetensors",
}
MODELS = [
    {"folder": "checkpoints", "file": "sd_xl_base_1.0.safetensors"},
    {"folder": "diffusion_models", "file": WAN["diffusionModel"]},
    {"folder": "text_encoders", "file": WAN["textEncoder"]},
    {"folder": "vae", "file": WAN["vae"]},
]  # fmt: skip


def template_rules() -> list[CelRule]:
    pool = schema.openapi_schema(schema.KINDS[0])
    template = pool["properties"]["spec"]["properties"]["template"]
    return [CelRule(rule=r["rule"], message=r["message"])
            for r in template["x-kubernetes-validations"]]  # fmt: skip


def cel_messages(template: dict[str, Any]) -> list[str]:
    return [m for rule in template_rules() if (m := rule.check(template)) is not None]


CASES = [
    pytest.param({"models": MODELS, "videoFamilies": [WAN]}, None, id="valid"),
    pytest.param({"models": MODELS}, None, id="no-families"),
    pytest.param({"models": MODELS[:2], "videoFamilies": [WAN]}, "template.models",
                 id="text-encoder-not-a-model"),
    pytest.param({"models": MODELS, "videoFamilies": [{**WAN, "clipVision": "clip_h.safetensors"}]},
                 "template.models", id="clip-vision-not-a-model"),
    pytest.param({"models": MODELS, "videoFamilies": [WAN, WAN]}, "unique", id="duplicate-name"),
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
        assert any(problem in m for m in messages)


@pytest.mark.parametrize(
    ("family", "field"),
    [
        pytest.param({**WAN, "architecture": "sora"}, "architecture", id="unknown-architecture"),
        pytest.param({**WAN, "name": "Wan 2.2"}, "name", id="bad-name"),
        pytest.param({**WAN, "modes": []}, "modes", id="no-modes"),
        pytest.param({**WAN, "secondsPerFrame": 0}, "secondsPerFrame", id="zero-speed"),
    ],
)
def test_bad_families_are_refused(family: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        TemplateSpec.model_validate({"models": MODELS, "videoFamilies": [family]})


def test_a_pool_picks_its_family_by_name_or_the_first() -> None:
    spec = GpuPoolSpec.model_validate({"template": {"models": MODELS, "videoFamilies": [WAN]}})
    assert spec.template.video_family(None) == spec.template.video_family("wan22-5b")
    assert spec.template.video_family("nope") is None


def test_templates_without_video_keep_their_hash() -> None:
    """Adding the field must not mark every running instance of an old pool as drifted
    (the first release's hash: the dump without any field added since)."""
    plain = TemplateSpec.model_validate({"models": MODELS})
    data = plain.model_dump(mode="json", by_alias=True)
    for key in ("videoFamilies", "styleModels", "checkpoints", "modelStallTimeout"):
        data.pop(key)
    for model in data["models"]:
        for key in ("sha256", "sizeBytes", "tokenSecret"):
            model.pop(key)
    import hashlib
    import json

    before = hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:16]
    assert plain.hash() == before
    assert TemplateSpec.model_validate({"models": MODELS, "videoFamilies": [WAN]}).hash() != before
