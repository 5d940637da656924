"""Structural-schema pruning, defaulting and validation (warmpool.sim.schema_validation)."""

from __future__ import annotations

from typing import Any

import pytest

from warmpool.sim.schema_validation import StructuralSchema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 0, "maximum": 10},
                "ratio": {
                    "type": "number",
                    "exclusiveMinimum": True,
                    "minimum": 0,
                    "exclusiveMaximum": True,
                    "maximum": 1,
                },
                "width": {"type": "integer", "multipleOf": 8},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]*$"},
                "tags": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 2,
                    "items": {"type": "string"},
                },
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "nested": {
                    "type": "object",
                    "default": {},
                    "properties": {"depth": {"type": "integer", "default": 3}},
                },
                "flag": {"type": "boolean"},
            },
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.width) || self.width <= self.size * 100",
                    "message": "width too large for size",
                    "fieldPath": ".width",
                },
            ],
        },
    },
}


@pytest.fixture
def schema() -> StructuralSchema:
    return StructuralSchema(SCHEMA)


def run(schema: StructuralSchema, spec: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n", "any": 1}, "spec": spec}
    schema.prune_and_default(obj)
    return obj, [c.render() for c in schema.validate(obj)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, "spec.size: Required value", id="required"),
        pytest.param(
            {"size": "3"},
            'spec.size: Invalid value: "3": spec.size in body must be of type integer: "string"',
            id="type",
        ),
        pytest.param(
            {"size": 11},
            "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
            id="maximum",
        ),
        pytest.param(
            {"size": -1},
            "spec.size: Invalid value: -1: spec.size in body should be greater than or equal to 0",
            id="minimum",
        ),
        pytest.param(
            {"size": 1, "ratio": 0},
            "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0",
            id="exclusive-minimum",
        ),
        pytest.param(
            {"size": 1, "ratio": 1},
            "spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1",
            id="exclusive-maximum",
        ),
        pytest.param(
            {"size": 1, "width": 12},
            "spec.width: Invalid value: 12: spec.width in body should be a multiple of 8",
            id="multiple-of",
        ),
        pytest.param(
            {"size": 1, "mode": "c"},
            'spec.mode: Unsupported value: "c": supported values: "a", "b"',
            id="enum",
        ),
        pytest.param(
            {"size": 1, "name": ""},
            'spec.name: Invalid value: "": spec.name in body should be at least 1 chars long',
            id="min-length",
        ),
        pytest.param(
            {"size": 1, "name": "abcdef"},
            "spec.name: Too long: may not be more than 5 bytes",
            id="max-length",
        ),
        pytest.param(
            {"size": 1, "name": "ab1"},
            "spec.name: Invalid value: \"ab1\": spec.name in body should match '^[a-z]*$'",
            id="pattern",
        ),
        pytest.param(
            {"size": 1, "tags": []},
            'spec.tags: Invalid value: "array": spec.tags in body should have at least 1 items',
            id="min-items",
        ),
        pytest.param(
            {"size": 1, "tags": ["a", "b", "c"]},
            "spec.tags: Too many: 3: must have at most 2 items",
            id="max-items",
        ),
        pytest.param(
            {"size": 1, "tags": [1]},
            "spec.tags[0]: Invalid value: 1: spec.tags[0] in "
            'body must be of type string: "integer"',
            id="items",
        ),
        pytest.param(
            {"size": 1, "port": 1.5},
            "spec.port: Invalid value: 1.5: spec.port in body "
            'must be of type integer or string: "number"',
            id="int-or-string",
        ),
        pytest.param(
            {"size": 1, "env": {"A": 1}},
            'spec.env.A: Invalid value: 1: spec.env.A in body must be of type string: "integer"',
            id="additional-properties",
        ),
        pytest.param(
            {"size": 1, "flag": "yes"},
            'spec.flag: Invalid value: "yes": spec.flag in body must be of type boolean: "string"',
            id="boolean",
        ),
        pytest.param(
            {"size": 1, "width": 200},
            'spec.width: Invalid value: "object": width too large for size',
            id="cel-with-field-path",
        ),
    ],
)
def test_refusals(schema: StructuralSchema, spec: dict[str, Any], expected: str) -> None:
    _, errors = run(schema, spec)
    assert errors == [expected]


def test_valid_object_passes_and_is_defaulted(schema: StructuralSchema) -> None:
    obj, errors = run(
        schema,
        {
            "size": 2,
            "ratio": 0.5,
            "width": 16,
            "port": "http",
            "note": None,
            "tags": ["x"],
            "env": {"A": "1"},
            "name": "ab",
        },
    )
    assert errors == []
    assert obj["spec"]["mode"] == "a"
    assert obj["spec"]["nested"] == {"depth": 3}  # defaults inside a defaulted value
    assert obj["spec"]["note"] is None  # nullable keeps null
    assert obj["metadata"] == {"name": "n", "any": 1}  # metadata is the server's business


def test_unknown_fields_are_pruned_except_where_preserved(schema: StructuralSchema) -> None:
    obj, errors = run(
        schema,
        {
            "size": 1,
            "bogus": 1,
            "free": {"anything": {"goes": 1}},
            "nested": {"depth": 1, "extra": 2},
            "flag": None,
        },
    )
    assert errors == []
    assert "bogus" not in obj["spec"]
    assert obj["spec"]["free"] == {"anything": {"goes": 1}}
    assert obj["spec"]["nested"] == {"depth": 1}
    assert "flag" not in obj["spec"]  # a null of a non-nullable field is pruned


def test_pruned_paths_are_reported(schema: StructuralSchema) -> None:
    obj = {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {},
        "spec": {"size": 1, "bogus": 1, "nested": {"extra": 2}},
        "top": 1,
    }
    pruned: list[str] = []
    schema.prune_and_default(obj, pruned)
    assert sorted(pruned) == ["spec.bogus", "spec.nested.extra", "top"]


def test_several_violations_are_all_reported(schema: StructuralSchema) -> None:
    _, errors = run(schema, {"size": -1, "mode": "z"})
    assert len(errors) == 2


def test_unchanged_values_are_not_validated_again(schema: StructuralSchema) -> None:
    """Ratcheting: an update that leaves an invalid stored value alone is not refused for it."""
    old = {"apiVersion": "x/v1", "kind": "X", "metadata": {}, "spec": {"size": 99}}
    new = {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"labels": {"a": "b"}},
        "spec": {"size": 99},
    }
    assert schema.validate(new, old) == []
    changed = {"apiVersion": "x/v1", "kind": "X", "metadata": {}, "spec": {"size": 98}}
    assert len(schema.validate(changed, old)) == 1
