"""Which pools an operator process handles: a Kubernetes label selector over the pools'
labels (its GpuInstances carry their pool's labels, so the same selector picks them).

The selector syntax is the API server's (equality and set-based): ``tier=gold``,
``tier!=gold``, ``tier in (gold,silver)``, ``tier notin (bronze)``, ``tier``, ``!tier``,
comma-separated requirements all holding. Pure: parsing and matching only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_SET = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)$")
_EQ = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})$")
_EXISTS = re.compile(rf"^(?P<neg>!?)\s*(?P<key>{_KEY})$")


class SelectorError(ValueError):
    """A label selector that does not parse (the message names the requirement)."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op == "in":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # notin


def _split(text: str) -> list[str]:
    """Requirements separated by commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """The requirements of a label selector (empty text: no requirement, all match)."""
    out = []
    for part in _split(text):
        if m := _SET.match(part):
            values = frozenset(v.strip() for v in m["values"].split(",") if v.strip())
            out.append(Requirement(m["key"], m["op"], values))
        elif m := _EQ.match(part):
            out.append(Requirement(m["key"], "notin" if m["op"] == "!=" else "in",
                                   frozenset({m["value"]})))  # fmt: skip
        elif m := _EXISTS.match(part):
            out.append(Requirement(m["key"], "!exists" if m["neg"] else "exists"))
        else:
            raise SelectorError(f"label selector requirement {part!r} does not parse")
    return tuple(out)


def selects(requirements: tuple[Requirement, ...], labels: Mapping[str, str] | None) -> bool:
    """Whether every requirement holds for ``labels``."""
    found = labels or {}
    return all(r.matches(found) for r in requirements)
