"""The admission webhook's pure checks (T1): what is refused, with which field and code."""

from __future__ import annotations

from typing import Any

import pytest

from warmpool.crds.generationjob import GenerationJobSpec
from warmpool.crds.muse import MuseSpec
from warmpool.operator.decisions import admission


def job(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"pool": "sdxl", "prompt": "a lighthouse at dusk"}
    return {"metadata": {"name": "j", "namespace": "default"}, "spec": {**base, **spec}}


def muse(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"displayName": "Ada", "age": 30}
    return {"metadata": {"name": "ada", "namespace": "default"}, "spec": {**base, **spec}}


JOBS: dict[str, tuple[dict[str, Any], dict[str, Any] | None, str | None, int]] = {
    "clean": (job(), None, None, 0),
    "prompt-term": (job(prompt="a child on a beach"), None, "spec.prompt", 403),
    "negative-steers-away-from-adults": (
        job(prompt="a woman reading", negativePrompt="adult, mature"),
        None,
        "spec.negativePrompt",
        403,
    ),
    "negative-keeps-children-out": (
        job(prompt="a woman reading", negativePrompt="child"),
        None,
        None,
        0,
    ),
    # The example: each piece passes, only the composition is refused.
    "composed-with-muse-template": (
        job(prompt="12", museRef="ada"),
        muse(promptTemplate="{prompt}-year-old {name}"),
        "spec.prompt",
        403,
    ),
    "muse-not-found-passes-to-the-second-line": (job(prompt="12", museRef="ada"), None, None, 0),
    "muse-named-but-clean": (job(museRef="ada"), muse(), None, 0),
    "cross-field-frames-on-image": (job(frames=16), None, "spec", 422),
    "schema-missing-prompt": (
        {"metadata": {"name": "j"}, "spec": {"pool": "sdxl"}},
        None,
        "spec.prompt",
        422,
    ),
}


@pytest.mark.parametrize(("body", "muse_body", "field", "code"), JOBS.values(), ids=JOBS.keys())
def test_check_job(
    body: dict[str, Any], muse_body: dict[str, Any] | None, field: str | None, code: int
) -> None:
    denial = admission.check_job(body, muse_body)
    if field is None:
        assert denial is None
        return
    assert denial is not None
    assert (denial.field, denial.code) == (field, code)
    assert denial.message.startswith(f"{field}: ")


def test_composed_denial_names_the_muse_but_not_the_prompt() -> None:
    body = job(prompt="12", museRef="ada")
    denial = admission.check_job(body, muse(promptTemplate="{prompt}-year-old {name}"))
    assert denial is not None
    assert "muse 'ada'" in denial.message
    assert "content policy" in denial.message


MUSES: dict[str, tuple[dict[str, Any], str | None]] = {
    "clean": (muse(), None),
    "name": (muse(displayName="little girl"), "spec.displayName"),
    "style": (muse(style="schoolgirl uniform"), "spec.style"),
    "appearance": (muse(appearance={"body": "petite teen"}), "spec.appearance.body"),
    "tag": (muse(tags=["ok", "loli"]), "spec.tags[1]"),
    "template-age": (muse(promptTemplate="{name}, 12 years old"), "spec.promptTemplate"),
    "negative-steering": (muse(negativePrompt="adult"), "spec.negativePrompt"),
    "under-18-by-schema": (muse(age=16), "spec.age"),
}


@pytest.mark.parametrize(("body", "field"), MUSES.values(), ids=MUSES.keys())
def test_check_muse(body: dict[str, Any], field: str | None) -> None:
    denial = admission.check_muse(body)
    assert (denial.field if denial else None) == field


def test_check_pool_refuses_what_only_the_model_checks() -> None:
    """``models[].file: ".."`` passes the schema's pattern and no CEL rule covers it; the
    model's validator refuses it (a path out of the model folder), so the webhook does."""
    models = [{"folder": "checkpoints", "file": "..", "url": "https://example.com/a"}]
    body = {"metadata": {"name": "p"}, "spec": {"replicas": 1, "template": {"models": models}}}
    denial = admission.check_pool(body)
    assert denial is not None
    assert denial.field == "spec.template.models[0]"
    assert denial.reason == "models[].file must be a file name"
    assert denial.code == 422
    assert admission.check_pool({"metadata": {"name": "p"}, "spec": {"replicas": 1}}) is None


NEEDS: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None, bool]] = {
    "create": (None, job(), True),
    "spec-change": (job(), job(prompt="other"), True),
    "metadata-only": (job(), {**job(), "metadata": {"name": "j", "finalizers": ["x"]}}, False),
    "being-deleted": (
        job(),
        {**job(prompt="x"), "metadata": {"name": "j", "deletionTimestamp": "2026-01-01T00:00:00Z"}},
        False,
    ),
    "delete": (job(), None, False),
}


@pytest.mark.parametrize(("old", "new", "expected"), NEEDS.values(), ids=NEEDS.keys())
def test_needs_review(
    old: dict[str, Any] | None, new: dict[str, Any] | None, expected: bool
) -> None:
    assert admission.needs_review(old, new) is expected


def test_policy_refusal_is_what_the_second_line_applies() -> None:
    spec = GenerationJobSpec.model_validate({"pool": "p", "prompt": "12"})
    template = MuseSpec.model_validate(
        {"displayName": "Ada", "age": 30, "promptTemplate": "{prompt}-year-old {name}"}
    )
    assert admission.policy_refusal(spec, None) is None
    refusal = admission.policy_refusal(spec, template)
    assert refusal is not None and refusal.where == "prompt"


def test_a_job_is_checked_with_the_variation_it_chooses() -> None:
    """The runner composes the job's variation; the webhook checks that very text."""
    variations = [{"name": "school", "scenario": "in a schoolgirl uniform"}]
    body = job(museRef="ada", variation="school")
    denial = admission.check_job(body, muse(variations=variations))
    assert denial is not None and denial.code == 403
    assert admission.check_job(job(museRef="ada"), muse(variations=variations)) is None


def test_a_muse_is_checked_with_each_variation() -> None:
    variations = [{"name": "beach"}, {"name": "school", "scenario": "a little girl at school"}]
    denial = admission.check_muse(muse(variations=variations))
    assert denial is not None
    assert denial.field == "spec.variations[1]"
