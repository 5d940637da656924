"""Pruning, defaulting and validation of custom objects by a CRD's structural schema.

The order is the API server's: unknown fields are pruned, then defaults are applied (also
inside defaulted values), then the object is validated, including the CEL rules of
``x-kubernetes-validations``. Each schema is compiled once into a tree of :class:`Node`.

Error messages follow the API server's shape, e.g.
``spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from warmpool.sim.cel import CelRule

__all__ = ["Cause", "Node", "StructuralSchema"]

# Fields every object keeps whatever its schema says (the API server handles them itself).
ROOT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


@dataclass(frozen=True)
class Cause:
    """One entry of ``Status.details.causes``."""

    field: str
    reason: str
    message: str

    def render(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


def _show(value: Any) -> str:
    """Render a value as the API server does in ``Invalid value: ...``."""
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return '"null"'
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


_REASON_PREFIX = {
    "FieldValueForbidden": "Forbidden",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@dataclass
class Node:
    """One compiled node of a structural schema."""

    type: str | None = None
    properties: dict[str, Node] = field(default_factory=dict)
    additional: Node | None = None  # additionalProperties as a schema
    items: Node | None = None
    required: tuple[str, ...] = ()
    enum: tuple[Any, ...] | None = None
    default: Any = None
    has_default: bool = False
    nullable: bool = False
    preserve_unknown: bool = False
    int_or_string: bool = False
    embedded: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    multiple_of: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    min_items: int | None = None
    max_items: int | None = None
    min_properties: int | None = None
    max_properties: int | None = None
    rules: tuple[CelRule, ...] = ()

    @classmethod
    def compile(cls, schema: Mapping[str, Any]) -> Node:
        additional = schema.get("additionalProperties")
        pattern = schema.get("pattern")
        return cls(
            type=schema.get("type"),
            properties={k: cls.compile(v) for k, v in (schema.get("properties") or {}).items()},
            additional=cls.compile(additional) if isinstance(additional, Mapping) else None,
            items=cls.compile(schema["items"])
            if isinstance(schema.get("items"), Mapping)
            else None,
            required=tuple(schema.get("required") or ()),
            enum=tuple(schema["enum"]) if "enum" in schema else None,
            default=schema.get("default"),
            has_default="default" in schema,
            nullable=bool(schema.get("nullable", False)),
            preserve_unknown=bool(schema.get("x-kubernetes-preserve-unknown-fields", False))
            or additional is True,
            int_or_string=bool(schema.get("x-kubernetes-int-or-string", False)),
            embedded=bool(schema.get("x-kubernetes-embedded-resource", False)),
            minimum=schema.get("minimum"),
            maximum=schema.get("maximum"),
            exclusive_minimum=bool(schema.get("exclusiveMinimum", False)),
            exclusive_maximum=bool(schema.get("exclusiveMaximum", False)),
            multiple_of=schema.get("multipleOf"),
            min_length=schema.get("minLength"),
            max_length=schema.get("maxLength"),
            pattern=re.compile(pattern) if pattern else None,
            min_items=schema.get("minItems"),
            max_items=schema.get("maxItems"),
            min_properties=schema.get("minProperties"),
            max_properties=schema.get("maxProperties"),
            rules=tuple(
                CelRule.from_schema(e) for e in schema.get("x-kubernetes-validations") or ()
            ),
        )

    def child(self, key: str) -> Node | None:
        node = self.properties.get(key)
        return node if node is not None else self.additional

    # --- pruning and defaulting -------------------------------------------------------------

    def prune_and_default(
        self, value: Any, *, root: bool = False, path: str = "", pruned: list[str] | None = None
    ) -> Any:
        """Return the value with unknown fields dropped and defaults filled in (in place).

        The paths of dropped unknown fields are appended to ``pruned`` (for strict field
        validation, which refuses them instead).
        """
        if isinstance(value, dict):
            if self.properties or self.additional is not None or self.type == "object":
                for key in list(value):
                    if root and key in ROOT_FIELDS:
                        continue
                    sub = self.child(key)
                    if sub is None:
                        if not self.preserve_unknown:
                            del value[key]
                            if pruned is not None:
                                pruned.append(_join(path, key))
                        continue
                    if value[key] is None and not sub.nullable:
                        del value[key]  # the API server prunes non-nullable nulls
                        continue
                    value[key] = sub.prune_and_default(
                        value[key], path=_join(path, key), pruned=pruned
                    )
                for key, sub in self.properties.items():
                    if key not in value and sub.has_default:
                        value[key] = sub.prune_and_default(copy.deepcopy(sub.default))
        elif isinstance(value, list) and self.items is not None:
            for index, item in enumerate(value):
                value[index] = self.items.prune_and_default(
                    item, path=f"{path}[{index}]", pruned=pruned
                )
        return value

    # --- validation --------------------------------------------------------------------------

    def validate(
        self,
        value: Any,
        path: str,
        causes: list[Cause],
        *,
        old: Any = None,
        has_old: bool = False,
        root: bool = False,
    ) -> None:
        """Append a :class:`Cause` for every violation in ``value`` (at ``path``).

        On updates, a value equal to the stored one is not validated again (validation
        ratcheting, as API servers do since Kubernetes 1.30): it keeps a status write cheap and
        never fails an update over a field it does not touch.
        """
        if has_old and not root and value == old:
            return
        before = len(causes)
        if value is None:
            if not self.nullable:
                causes.append(self._invalid(path, value, f"must be of type {self.type}"))
            return
        if not self._check_type(value, path, causes):
            return
        if self.enum is not None and value not in self.enum:
            supported = ", ".join(_show(v) for v in self.enum)
            causes.append(
                Cause(
                    path,
                    "FieldValueNotSupported",
                    f"Unsupported value: {_show(value)}: supported values: {supported}",
                )
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self._check_number(value, path, causes)
        elif isinstance(value, str):
            self._check_string(value, path, causes)
        elif isinstance(value, list):
            self._check_array(value, path, causes, old=old, has_old=has_old)
        elif isinstance(value, dict):
            self._check_object(value, path, causes, old=old, has_old=has_old, root=root)
        if len(causes) == before:
            for rule in self.rules:
                message = rule.check(value, old=old, has_old=has_old)
                if message is not None:
                    where = path + rule.field_path if rule.field_path else path
                    prefix = _REASON_PREFIX.get(rule.reason, f"Invalid value: {_show(value)}")
                    causes.append(Cause(where, rule.reason, f"{prefix}: {message}"))

    def _invalid(self, path: str, value: Any, detail: str) -> Cause:
        return Cause(
            path, "FieldValueInvalid", f"Invalid value: {_show(value)}: {path} in body {detail}"
        )

    def _check_type(self, value: Any, path: str, causes: list[Cause]) -> bool:
        actual = _type_of(value)
        if self.int_or_string:
            ok = actual in ("integer", "string")
            expected = "integer or string"
        elif self.type is None:
            return True
        else:
            expected = self.type
            ok = actual == self.type or (self.type == "number" and actual == "integer")
            if not ok and self.type == "integer" and isinstance(value, float):
                ok = value.is_integer()
        if not ok:
            causes.append(
                Cause(
                    path,
                    "FieldValueTypeInvalid",
                    f"Invalid value: {_show(value)}: {path} in body must be of type {expected}: "
                    f'"{actual}"',
                )
            )
        return ok

    def _check_number(self, value: float, path: str, causes: list[Cause]) -> None:
        if self.minimum is not None:
            if self.exclusive_minimum and value <= self.minimum:
                causes.append(self._invalid(path, value, f"should be greater than {self.minimum}"))
            elif value < self.minimum:
                causes.append(
                    self._invalid(path, value, f"should be greater than or equal to {self.minimum}")
                )
        if self.maximum is not None:
            if self.exclusive_maximum and value >= self.maximum:
                causes.append(self._invalid(path, value, f"should be less than {self.maximum}"))
            elif value > self.maximum:
                causes.append(
                    self._invalid(path, value, f"should be less than or equal to {self.maximum}")
                )
        if self.multiple_of:
            quotient = value / self.multiple_of
            if abs(quotient - round(quotient)) > 1e-9:
                causes.append(
                    self._invalid(path, value, f"should be a multiple of {self.multiple_of}")
                )

    def _check_string(self, value: str, path: str, causes: list[Cause]) -> None:
        if self.min_length is not None and len(value) < self.min_length:
            causes.append(
                self._invalid(path, value, f"should be at least {self.min_length} chars long")
            )
        if self.max_length is not None and len(value) > self.max_length:
            causes.append(
                Cause(
                    path,
                    "FieldValueTooLong",
                    f"Too long: may not be more than {self.max_length} bytes",
                )
            )
        if self.pattern is not None and self.pattern.search(value) is None:
            causes.append(self._invalid(path, value, f"should match '{self.pattern.pattern}'"))

    def _check_array(
        self, value: list[Any], path: str, causes: list[Cause], *, old: Any, has_old: bool
    ) -> None:
        if self.min_items is not None and len(value) < self.min_items:
            causes.append(
                self._invalid(path, value, f"should have at least {self.min_items} items")
            )
        if self.max_items is not None and len(value) > self.max_items:
            causes.append(
                Cause(
                    path,
                    "FieldValueTooMany",
                    f"Too many: {len(value)}: must have at most {self.max_items} items",
                )
            )
        if self.items is not None:
            for index, item in enumerate(value):
                self.items.validate(item, f"{path}[{index}]", causes)

    def _check_object(
        self,
        value: dict[str, Any],
        path: str,
        causes: list[Cause],
        *,
        old: Any,
        has_old: bool,
        root: bool,
    ) -> None:
        for key in self.required:
            if key not in value:
                causes.append(Cause(_join(path, key), "FieldValueRequired", "Required value"))
        if self.min_properties is not None and len(value) < self.min_properties:
            causes.append(
                self._invalid(path, value, f"should have at least {self.min_properties} properties")
            )
        if self.max_properties is not None and len(value) > self.max_properties:
            causes.append(
                self._invalid(path, value, f"should have at most {self.max_properties} properties")
            )
        old_map = old if has_old and isinstance(old, dict) else None
        for key, item in value.items():
            if root and key in ROOT_FIELDS:
                continue
            sub = self.child(key)
            if sub is None:
                continue
            sub.validate(
                item,
                _join(path, key),
                causes,
                old=old_map.get(key) if old_map is not None else None,
                has_old=old_map is not None and key in old_map,
            )


class StructuralSchema:
    """The compiled ``openAPIV3Schema`` of one CRD version."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.raw = schema
        self.root = Node.compile(schema)

    def prune_and_default(
        self, obj: dict[str, Any], pruned: list[str] | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.root.prune_and_default(obj, root=True, pruned=pruned)
        return result

    def validate(self, obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[Cause]:
        causes: list[Cause] = []
        self.root.validate(dict(obj), "", causes, old=old, has_old=old is not None, root=True)
        return causes
