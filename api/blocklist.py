"""The prompt blocklist: refuses texts that indicate a person under 18.

Terms match as whole words, case-insensitively (``kid`` blocks "a kid" but not
"kidney"). Besides the terms, stated ages under 18 are refused: "12 year old",
"15-yr-old", "aged 9", "age: 16". The list is configurable
(``WARMPOOL_STUDIO_BLOCKLIST``); the age rule always applies.

Negative prompts are not checked: "child" in a negative prompt keeps children out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_TERMS: tuple[str, ...] = (
    "child",
    "children",
    "childlike",
    "kid",
    "kids",
    "minor",
    "minors",
    "underage",
    "under-age",
    "teen",
    "teens",
    "teenage",
    "teenager",
    "preteen",
    "pre-teen",
    "tween",
    "adolescent",
    "juvenile",
    "schoolgirl",
    "schoolboy",
    "school girl",
    "school boy",
    "loli",
    "lolita",
    "shota",
    "shotacon",
    "lolicon",
    "toddler",
    "infant",
    "jailbait",
    "little girl",
    "little boy",
    "young girl",
    "young boy",
    "elementary school",
    "middle school",
    "junior high",
)

_AGES = re.compile(
    r"\b(\d{1,2})\s*[- ]?\s*(?:years?|yrs?)\s*[- ]?\s*old\b"
    r"|\b(\d{1,2})\s*y/?o\b"
    r"|\bage[ds]?\s*[:=]?\s*(\d{1,2})\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Blocked:
    """Why a text was refused (the matched words, for the message)."""

    match: str

    @property
    def message(self) -> str:
        return (
            f"refused by the content policy: {self.match!r} suggests a person under 18; "
            "only adults may be depicted"
        )


class Blocklist:
    """A compiled blocklist."""

    def __init__(self, terms: Iterable[str] | None = None) -> None:
        chosen = [t.strip() for t in (DEFAULT_TERMS if terms is None else terms) if t.strip()]
        if chosen:
            words = "|".join(
                re.escape(t).replace(r"\ ", r"[\s_-]+") for t in sorted(chosen, key=len)[::-1]
            )
            self._terms: re.Pattern[str] | None = re.compile(
                rf"(?<![\w]){words}(?![\w])", re.IGNORECASE
            )
        else:
            self._terms = None

    def check(self, text: str) -> Blocked | None:
        """The first reason to refuse ``text``, or None when it is acceptable."""
        if self._terms is not None and (m := self._terms.search(text)):
            return Blocked(m.group(0))
        for m in _AGES.finditer(text):
            age = int(next(g for g in m.groups() if g))
            if age < 18:
                return Blocked(m.group(0).strip())
        return None
