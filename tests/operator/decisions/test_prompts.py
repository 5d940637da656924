"""The muse prompt composer (T1: pure)."""

from __future__ import annotations

import pytest

from warmpool.crds.muse import Appearance, MuseSpec
from warmpool.operator.decisions import prompts


def _muse(**overrides: object) -> MuseSpec:
    base: dict[str, object] = {
        "displayName": "Captain Ada",
        "age": 34,
        "appearance": {"presentation": "woman", "hair": "short silver hair", "eyes": "grey eyes"},
        "style": "painterly, warm rim light",
        "personality": "calm",
        "negativePrompt": "extra fingers, deformed hands",
    }
    base.update(overrides)
    return MuseSpec.model_validate(base)


def test_without_muse_the_prompt_passes_through() -> None:
    out = prompts.compose(None, "  a lighthouse  ", "blurry, Blurry, low quality")
    assert out == prompts.ComposedPrompt("a lighthouse", "blurry, low quality")


def test_default_template_names_every_attribute_in_order() -> None:
    out = prompts.compose(_muse(), "on a ship")
    assert out.positive == (
        "on a ship, Captain Ada, 34 year old adult, woman, short silver hair, grey eyes, "
        "painterly, warm rim light, calm"
    )
    assert out.negative == "extra fingers, deformed hands"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param(
            "{appearance}, {prompt}, {style}",
            "woman, short silver hair, grey eyes, at sea, painterly, warm rim light",
            id="reordered",
        ),
        pytest.param(
            "portrait of {name} ({age})",
            "at sea, portrait of Captain Ada (34)",
            id="no-prompt-placeholder-prepends-it",
        ),
        pytest.param(
            "{prompt} {unknown} {name.__class__}",
            "at sea {unknown} {name.__class__}",
            id="unknown-braces-kept-literally",
        ),
        pytest.param("{prompt}, {personality}", "at sea, calm", id="personality"),
    ],
)
def test_templates(template: str, expected: str) -> None:
    assert prompts.compose(_muse(promptTemplate=template), "at sea").positive == expected


def test_blank_attributes_leave_no_empty_slots() -> None:
    muse = _muse(appearance={}, style="", personality="")
    assert prompts.compose(muse, "hello").positive == "hello, Captain Ada, 34 year old adult"


def test_negative_prompts_merge_muse_first_without_duplicates() -> None:
    out = prompts.compose(_muse(), "x", "Deformed Hands, watermark,, ")
    assert out.negative == "extra fingers, deformed hands, watermark"


def test_describe_appearance_fixed_order() -> None:
    text = prompts.describe_appearance(Appearance(features="scar", hair="red", presentation="man"))
    assert text == "man, red, scar"


def test_merge_negative_empty() -> None:
    assert prompts.merge_negative("", " , ") == ""
