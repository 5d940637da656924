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

Negative prompts are merged: the muse's terms first, then the job's, split on
commas, stripped, and de-duplicated case-insensitively in first-seen order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from warmpool.crds.muse import Appearance, MuseSpec

__all__ = [
    "DEFAULT_TEMPLATE",
    "PLACEHOLDERS",
    "ComposedPrompt",
    "compose",
    "describe_appearance",
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


def compose(muse: MuseSpec | None, prompt: str, negative: str = "") -> ComposedPrompt:
    """Compose the positive and negative prompts of a job, optionally with a muse."""
    if muse is None:
        return ComposedPrompt(positive=prompt.strip(), negative=merge_negative(negative))
    values = {
        "prompt": prompt.strip(),
        "name": muse.display_name.strip(),
        "age": str(muse.age),
        "appearance": describe_appearance(muse.appearance),
        "style": muse.style.strip(),
        "personality": muse.personality.strip(),
    }
    template = muse.prompt_template.strip() or DEFAULT_TEMPLATE
    if "{prompt}" not in template:
        template = "{prompt}, " + template
    positive = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    return ComposedPrompt(
        positive=_tidy(positive), negative=merge_negative(muse.negative_prompt, negative)
    )
