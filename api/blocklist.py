"""The studio's side of the minors policy (:mod:`warmpool.operator.decisions.minors`).

The policy itself is a pure function in ``operator/decisions`` so that the operator
(its admission webhook, its last check before submitting to ComfyUI) applies the very
same rule; this wrapper only carries the configured terms
(``WARMPOOL_STUDIO_BLOCKLIST``: replaces the default terms; the age rule always applies).
"""

from __future__ import annotations

from collections.abc import Iterable

from warmpool.operator.decisions import minors

Blocked = minors.Refusal
DEFAULT_TERMS = minors.DEFAULT_TERMS


class Blocklist:
    """The policy with this studio's terms."""

    def __init__(self, terms: Iterable[str] | None = None) -> None:
        self.terms = None if terms is None else tuple(terms)

    def check(self, text: str) -> Blocked | None:
        """The first reason to refuse one positive text, or None."""
        return minors.check_text(text, self.terms)

    def check_prompt(self, positive: str, negative: str, *, person: bool) -> Blocked | None:
        """The policy on a composed prompt (positive and negative)."""
        return minors.check_prompt(positive, negative, person=person, terms=self.terms)
