"""Vast.ai's query language, as the simulator evaluates it (contract §5.1, §5.5).

A query maps field names to ``{operator: value}`` (``eq neq gt gte lt lte in
notin``; several per field); search adds the control keys ``order``, ``limit``,
``type`` and ``allocated_storage``. Values arrive as the official CLI sends them:
numbers often as strings (``"num_gpus": {"eq": "1"}``), GPU names with spaces,
countries as bare codes matched against the end of ``geolocation``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

OPERATORS = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "in", "notin", "nin"})
CONTROL_KEYS = frozenset(
    {"order", "limit", "type", "allocated_storage", "disable_bundling", "select_cols"}
)
SEARCH_TYPES = {"on-demand": "on-demand", "ondemand": "on-demand", "bid": "bid"}
SEARCH_TYPES |= {"reserved": "reserved", "interruptible": "bid"}
DEFAULT_LIMIT = 64


class QueryError(ValueError):
    """The query is malformed: the API answers 400 ``invalid_request``."""


@dataclasses.dataclass(frozen=True)
class Search:
    filters: dict[str, dict[str, Any]]
    order: list[tuple[str, bool]]  # (field, descending)
    limit: int
    type: str
    allocated_storage: float


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def parse_filters(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate the field → {op: value} part of a query."""
    filters: dict[str, dict[str, Any]] = {}
    for field, spec in raw.items():
        if not isinstance(field, str) or not field:
            raise QueryError("field names must be non-empty strings")
        if not isinstance(spec, Mapping):
            spec = {"eq": spec}  # a bare value means equality
        for op, value in spec.items():
            if op not in OPERATORS:
                raise QueryError(f"unknown operator {op!r} for field {field!r}")
            if op in ("in", "notin", "nin") and not isinstance(value, list):
                raise QueryError(f"operator {op!r} of {field!r} needs a list")
            if op in ("gt", "gte", "lt", "lte") and _number(value) is None:
                raise QueryError(f"operator {op!r} of {field!r} needs a number")
        filters[field] = {("notin" if op == "nin" else op): v for op, v in spec.items()}
    return filters


def parse_search(body: Any) -> Search:
    """A ``POST /bundles/`` body (or the ``q`` of ``PUT /search/asks/``)."""
    if not isinstance(body, Mapping):
        raise QueryError("the query must be a JSON object")
    order: list[tuple[str, bool]] = []
    raw_order = body.get("order", [["score", "desc"]])
    if not isinstance(raw_order, list):
        raise QueryError("order must be a list of [field, direction]")
    for item in raw_order:
        if (
            not isinstance(item, list | tuple)
            or not 1 <= len(item) <= 2
            or not isinstance(item[0], str)
        ):
            raise QueryError("order must be a list of [field, direction]")
        direction = str(item[1]).lower() if len(item) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise QueryError(f"order direction must be asc or desc, not {direction!r}")
        order.append((item[0], direction == "desc"))
    limit_raw = body.get("limit", DEFAULT_LIMIT)
    limit = _number(limit_raw)
    if limit is None or limit < 0:
        raise QueryError("limit must be a non-negative number")
    kind = body.get("type", "on-demand")
    if kind not in SEARCH_TYPES:
        raise QueryError(f"type must be one of on-demand, bid, reserved; not {kind!r}")
    storage = _number(body.get("allocated_storage", 8.0))
    if storage is None or storage < 0:
        raise QueryError("allocated_storage must be a non-negative number")
    filters = parse_filters({k: v for k, v in body.items() if k not in CONTROL_KEYS})
    return Search(
        filters=filters,
        order=order,
        limit=int(limit) or DEFAULT_LIMIT,
        type=SEARCH_TYPES[kind],
        allocated_storage=storage,
    )


def _coerce(row_value: Any, query_value: Any) -> tuple[Any, Any]:
    """Bring the query value to the row value's type (CLI sends "1" for 1, "true")."""
    if isinstance(row_value, bool):
        if isinstance(query_value, str) and query_value.lower() in ("true", "false"):
            return row_value, query_value.lower() == "true"
        return row_value, query_value
    if isinstance(row_value, int | float):
        number = _number(query_value)
        return float(row_value), number if number is not None else query_value
    if isinstance(row_value, str) and isinstance(query_value, str):
        return row_value.strip(), query_value.strip()
    return row_value, query_value


def _equal(field: str, row_value: Any, query_value: Any) -> bool:
    if field == "geolocation" and isinstance(row_value, str) and isinstance(query_value, str):
        country = row_value.rsplit(",", 1)[-1].strip().upper()
        return query_value.strip().upper() in (country, row_value.strip().upper())
    left, right = _coerce(row_value, query_value)
    return bool(left == right)


def _compare(op: str, row_value: Any, query_value: Any) -> bool:
    left, right = _number(row_value), _number(query_value)
    if left is None or right is None:
        return False
    return {
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
    }[op]


def matches(row: Mapping[str, Any], filters: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether a row satisfies every operator of every field."""
    for field, ops in filters.items():
        value = row.get(field)
        for op, wanted in ops.items():
            if op == "eq":
                ok = value is None if wanted is None else _equal(field, value, wanted)
            elif op == "neq":
                ok = value is not None if wanted is None else not _equal(field, value, wanted)
            elif op == "in":
                ok = any((value is None) if w is None else _equal(field, value, w) for w in wanted)
            elif op == "notin":
                ok = not any(
                    (value is None) if w is None else _equal(field, value, w) for w in wanted
                )
            else:
                ok = _compare(op, value, wanted)
            if not ok:
                return False
    return True


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, 0)
    number = _number(value) if not isinstance(value, str) else None
    if number is not None:
        return (0, number)
    return (1, str(value))


def ordered(rows: Iterable[dict[str, Any]], order: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Rows sorted by several keys (stable; nulls last in either direction)."""
    out = list(rows)
    for field, descending in reversed(order):
        present = [r for r in out if r.get(field) is not None]
        missing = [r for r in out if r.get(field) is None]
        present.sort(key=lambda r: _sort_key(r.get(field)), reverse=descending)
        out = present + missing
    return out
