"""Structured muse traits and variations in the prompt composer (T1: pure)."""

from __future__ import annotations

import pytest

from warmpool.crds.muse import MuseSpec
from warmpool.crds.musetraits import CHOICES, Traits
from warmpool.operator.decisions import prompts

EVERY = {
    "nationality": "Japanese", "ethnicity": "East Asian", "occupation": "pilot",
    "height": "tall", "build": "athletic", "shape": "hourglass",
    "faceShape": "oval", "jawline": "sharp", "cheekbones": "high", "makeup": "natural makeup",
    "eyeColour": "green", "eyeShape": "almond", "eyeSize": "large",
    "hairColour": "auburn", "hairLength": "very long", "hairStyle": "wavy",
    "hairTexture": "silky", "lips": "full", "nose": "button",
    "skinTone": "olive", "skinTexture": "freckled",
    "fashion": "streetwear", "footwear": "ankle boots", "nails": "french manicure",
}  # fmt: skip


def muse(**overrides: object) -> MuseSpec:
    base: dict[str, object] = {"displayName": "Ada", "age": 30, "style": "oil painting"}
    base.update(overrides)
    return MuseSpec.model_validate(base)


def test_every_trait_reads_head_to_toe() -> None:
    text = prompts.describe_traits(Traits.model_validate(EVERY))
    assert text == (
        "Japanese, East Asian descent, pilot, tall, athletic build, hourglass figure, "
        "oval face, sharp jawline, high cheekbones, natural makeup, large almond green eyes, "
        "very long silky wavy auburn hair, full lips, button nose, olive freckled skin, "
        "wearing streetwear clothes and ankle boots, french manicure"
    )


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        pytest.param({}, "", id="none"),
        pytest.param({"build": "athletic build"}, "athletic build", id="noun-not-doubled"),
        pytest.param({"hairColour": "red"}, "red hair", id="one-hair-part"),
        pytest.param({"footwear": "boots"}, "wearing boots", id="footwear-alone"),
        pytest.param({"occupation": " teacher "}, "teacher", id="stripped"),
    ],
)
def test_partial_traits(traits: dict[str, str], expected: str) -> None:
    assert prompts.describe_traits(Traits.model_validate(traits)) == expected


def test_traits_join_appearance_and_personality_in_the_default_template() -> None:
    spec = muse(traits={"hairColour": "silver", "personality": ["calm", "witty"]},
                appearance={"outfit": "navy coat"}, personality="dry humour")  # fmt: skip
    out = prompts.compose(spec, "on a ship")
    assert out.positive == (
        "on a ship, Ada, 30 year old adult, silver hair, navy coat, oil painting, "
        "calm, witty, dry humour"
    )


def test_a_variation_replaces_outfit_and_style_and_adds_its_scenario() -> None:
    spec = muse(
        traits={"fashion": "business", "footwear": "loafers"},
        appearance={"outfit": "grey suit"},
        variations=[{"name": "beach", "outfit": "a sundress", "scenario": "on a beach",
                     "style": "film photo"}, {"name": "night", "scenario": "at night"}],
    )  # fmt: skip
    beach = prompts.compose(spec, "portrait", variation="beach").positive
    assert beach == "portrait, on a beach, Ada, 30 year old adult, wearing a sundress, film photo"
    night = prompts.compose(spec, "portrait", variation="night").positive
    assert night == (
        "portrait, at night, Ada, 30 year old adult, wearing business clothes and loafers, "
        "grey suit, oil painting"
    )
    assert prompts.compose(spec, "portrait", variation="moon") == prompts.compose(spec, "portrait")


def test_the_pick_lists_cover_every_trait_and_seven_hair_lengths() -> None:
    names = set(Traits.model_fields)
    assert set(CHOICES) == names
    assert CHOICES["hair_length"][0] == "pixie" and CHOICES["hair_length"][-1] == "very long"
    assert len(CHOICES["hair_length"]) == 7
    for name, values in CHOICES.items():
        assert len(set(values)) == len(values), name
