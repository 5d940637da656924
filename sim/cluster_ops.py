"""Pure helpers of the emulated Kubernetes API: selectors, patches, paths, timestamps."""

from __future__ import annotations

import copy
import datetime
import re
from collections.abc import Callable, Mapping
from typing import Any

import jsonpatch

__all__ = [
    "SelectorError",
    "apply_patch",
    "get_path",
    "json_merge_patch",
    "now_rfc3339",
    "parse_field_selector",
    "parse_label_selector",
    "set_path",
]

Matcher = Callable[[Mapping[str, Any]], bool]


class SelectorError(ValueError):
    """A label or field selector that cannot be parsed."""


class PatchError(ValueError):
    """A patch that cannot be applied (bad body or failed JSON-patch test/path)."""


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- label selectors ------------------------------------------------------------------------

_SET_TERM = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=()]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(!?)\s*([^\s!=()]+)\s*$")


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t for t in terms if t.strip()]


def _label_term(term: str) -> Callable[[Mapping[str, str]], bool]:
    if m := _SET_TERM.match(term):
        key, op, raw = m.groups()
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EQ_TERM.match(term):
        key, op, value = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS_TERM.match(term):
        negate, key = m.groups()
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"unable to parse requirement: {term!r}")


def parse_label_selector(selector: str | None) -> Matcher | None:
    """Compile ``labelSelector=`` (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``)."""
    if not selector or not selector.strip():
        return None
    terms = [_label_term(t) for t in _split_terms(selector)]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(term(labels) for term in terms)

    return matches


def parse_field_selector(selector: str | None) -> Matcher | None:
    """Compile ``fieldSelector=`` (dotted paths with ``=``, ``==``, ``!=``)."""
    if not selector or not selector.strip():
        return None
    checks: list[tuple[list[str], bool, str]] = []
    for term in selector.split(","):
        m = _EQ_TERM.match(term)
        if not m:
            raise SelectorError(f"invalid field selector: {term!r}")
        path, op, value = m.groups()
        checks.append((path.split("."), op != "!=", value))

    def matches(obj: Mapping[str, Any]) -> bool:
        for parts, equal, value in checks:
            actual = get_path(obj, parts)
            actual_text = "" if actual is None else str(actual)
            if (actual_text == value) != equal:
                return False
        return True

    return matches


# --- paths ----------------------------------------------------------------------------------


def _split(path: str | list[str]) -> list[str]:
    return path if isinstance(path, list) else [p for p in path.strip(".").split(".") if p]


def get_path(obj: Mapping[str, Any], path: str | list[str]) -> Any:
    value: Any = obj
    for part in _split(path):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def set_path(obj: dict[str, Any], path: str | list[str], value: Any) -> None:
    parts = _split(path)
    target = obj
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


# --- patches --------------------------------------------------------------------------------


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge recursively, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


MERGE_TYPES = frozenset(
    {
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",  # treated as a merge patch
        "application/apply-patch+yaml",  # server-side apply, approximated as a merge
    }
)
JSON_PATCH = "application/json-patch+json"


def apply_patch(content_type: str, obj: dict[str, Any], body: Any) -> dict[str, Any]:
    """Apply a PATCH body of the given content type; raise :class:`PatchError` if unusable."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == JSON_PATCH:
        if not isinstance(body, list):
            raise PatchError("a JSON patch must be a list of operations")
        try:
            result: dict[str, Any] = jsonpatch.apply_patch(obj, body, in_place=False)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
            raise PatchError(str(e)) from e
        return result
    if kind in MERGE_TYPES:
        if not isinstance(body, dict):
            raise PatchError("a merge patch must be a JSON object")
        merged: dict[str, Any] = json_merge_patch(obj, body)
        return merged
    raise PatchError(f"unsupported patch content type: {content_type or '(none)'}")
