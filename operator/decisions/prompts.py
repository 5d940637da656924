"""The muse prompt composer: (muse, user prompt) → (positive, negative).

Pure: no I/O, no clock. The studio uses it to preview what will be sent, the
operator uses it to build the workflow, so both agree on the exact text.

A muse's ``promptTemplate`` may use the placeholders ``{prompt}``, ``{name}``,
``{age}``, ``{appearance}``, ``{style}`` and ``{personality}``. Only these six
are substituted; any other brace text is kept as written (no ``str.format``,
so a template can neither raise nor reach attributes). An empty template means
the default composition (:data:`DEFAULT_TEMPLATE`). A template that does not
mention ``{prompt}`` gets the user prompt prepended, so the user's words are
never silently dropped.

Structured traits (``MuseSpec.traits``) join ``{appearance}`` in a readable order, head
to toe, before the free appearance phrases; personality traits join ``{personality}``.
A variation (``spec.variation``) replaces the outfit and/or style and adds its scenario
after the user prompt.

Negative prompts are merged: the muse's terms first, then the job's, split on
commas, stripped, and de-duplicated case-insensitively in first-seen order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from warmpool.crds.muse import Appearance, MuseSpec
from warmpool.crds.musetraits import Traits

__all__ = [
    "DEFAULT_TEMPLATE",
    "PLACEHOLDERS",
    "ComposedPrompt",
    "compose",
    "describe_appearance",
    "describe_traits",
    "merge_negative",
]

PLACEHOLDERS = ("prompt", "name", "age", "appearance", "style", "personality")
DEFAULT_TEMPLATE = "{prompt}, {name}, {age} year old adult, {appearance}, {style}, {personality}"

_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_APPEARANCE_ORDER = ("presentation", "body", "skin", "hair", "eyes", "face", "outfit", "features")


@dataclass(frozen=True)
class ComposedPrompt:
    """The texts sent to the model."""

    positive: str
    negative: str


def describe_appearance(appearance: Appearance) -> str:
    """The non-empty appearance attributes as one comma-separated phrase, in a fixed order."""
    parts = [getattr(appearance, name).strip() for name in _APPEARANCE_ORDER]
    return ", ".join(p for p in parts if p)


def merge_negative(*texts: str) -> str:
    """Merge comma-separated negative prompts, de-duplicated case-insensitively."""
    seen: set[str] = set()
    terms: list[str] = []
    for text in texts:
        for raw in text.split(","):
            term = raw.strip()
            if term and term.lower() not in seen:
                seen.add(term.lower())
                terms.append(term)
    return ", ".join(terms)


def _tidy(text: str) -> str:
    """Remove the empty slots a template leaves when attributes are blank."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*,(\s*,)+", ",", text)  # ", ," → ","
    text = re.sub(r"\s+([,.;])", r"\1", text)
    return text.strip().strip(",").strip()


def _with(value: str, suffix: str) -> str:
    """``value`` and its noun (``athletic`` → ``athletic build``), unless already there."""
    value = value.strip()
    if not value or not suffix or value.lower().endswith(suffix):
        return value
    return f"{value} {suffix}"


def _words(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p.strip())


def describe_traits(traits: Traits, *, outfit: str | None = None) -> str:
    """The structured attributes as readable phrases, head to toe: who (nationality,
    ethnicity, occupation), body, face, eyes, hair, lips and nose, skin, then what they
    wear (``outfit``, from a variation, replaces fashion and footwear)."""
    t = traits
    hair = _words(t.hair_length, t.hair_texture, t.hair_style, t.hair_colour)
    eyes = _words(t.eye_size, t.eye_shape, t.eye_colour)
    skin = _words(t.skin_tone, t.skin_texture)
    wearing = [outfit.strip()] if outfit is not None else [
        _with(t.fashion, "clothes"), t.footwear.strip()
    ]  # fmt: skip
    wearing = [w for w in wearing if w]
    parts = [
        t.nationality, _with(t.ethnicity, "descent"), t.occupation,
        t.height, _with(t.build, "build"), _with(t.shape, "figure"),
        _with(t.face_shape, "face"), _with(t.jawline, "jawline"),
        _with(t.cheekbones, "cheekbones"), t.makeup,
        _with(eyes, "eyes"), _with(hair, "hair"), _with(t.lips, "lips"), _with(t.nose, "nose"),
        _with(skin, "skin"),
        ("wearing " + " and ".join(wearing)) if wearing else "", t.nails,
    ]  # fmt: skip
    return ", ".join(p.strip() for p in parts if p.strip())


def compose(
    muse: MuseSpec | None, prompt: str, negative: str = "", *, variation: str | None = None
) -> ComposedPrompt:
    """Compose the positive and negative prompts of a job, optionally with a muse and one
    of its variations (an unknown variation name composes the muse as it is)."""
    if muse is None:
        return ComposedPrompt(positive=prompt.strip(), negative=merge_negative(negative))
    chosen = muse.variation(variation)
    appearance = muse.appearance
    if chosen is not None and chosen.outfit.strip():
        appearance = appearance.model_copy(update={"outfit": ""})
    outfit = chosen.outfit if chosen is not None and chosen.outfit.strip() else None
    scenario = chosen.scenario.strip() if chosen is not None else ""
    style = chosen.style.strip() if chosen is not None and chosen.style.strip() else muse.style
    traits = ", ".join(t.strip() for t in muse.traits.personality if t.strip())
    looks = describe_traits(muse.traits, outfit=outfit)
    values = {
        "prompt": ", ".join(p for p in (prompt.strip(), scenario) if p),
        "name": muse.display_name.strip(),
        "age": str(muse.age),
        "appearance": ", ".join(p for p in (looks, describe_appearance(appearance)) if p),
        "style": style.strip(),
        "personality": ", ".join(p for p in (traits, muse.personality.strip()) if p),
    }
    template = muse.prompt_template.strip() or DEFAULT_TEMPLATE
    if "{prompt}" not in template:
        template = "{prompt}, " + template
    positive = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    return ComposedPrompt(
        positive=_tidy(positive), negative=merge_negative(muse.negative_prompt, negative)
    )
