"""Graph validation of the ComfyUI simulator, following ``execution.validate_prompt``.

Error types, messages, ``details`` and ``extra_info`` are those of contract §7.3-§7.4.
Literal values are coerced in place (``"20"`` → 20, ``7.9`` → 7) in a copy of the
graph that the caller queues, as a real server does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NodeDefs = Mapping[str, Mapping[str, Any]]


@dataclass
class Validation:
    """The outcome: ``ok`` means at least one output survived."""

    ok: bool
    error: dict[str, Any] | None
    outputs: list[str]
    node_errors: dict[str, Any]
    graph: dict[str, Any] = field(default_factory=dict)


def _prompt_error(kind: str, message: str, details: str = "", **extra: Any) -> Validation:
    error = {"type": kind, "message": message, "details": details, "extra_info": extra}
    return Validation(False, error, [], {})


def types_match(received: str, expected: str) -> bool:
    """ComfyUI's loose link-type check: ``*`` matches anything, unions by subset."""
    if received == expected or "*" in (received, expected):
        return True
    return set(received.split(",")) <= set(expected.split(","))


def _err(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def _coerce(kind: str, value: Any) -> Any:
    if kind == "INT":
        return int(value)
    if kind == "FLOAT":
        return float(value)
    if kind == "STRING":
        return str(value)
    if kind == "BOOLEAN":
        return bool(value)
    return value


class _Validator:
    def __init__(
        self,
        graph: dict[str, Any],
        defs: NodeDefs,
        input_exists: Callable[[str], bool],
        *,
        legacy: bool = False,
    ) -> None:
        self.graph = graph
        self.defs = defs
        self.input_exists = input_exists
        self.legacy = legacy
        self.results: dict[str, tuple[bool, list[dict[str, Any]]]] = {}
        self.finished: list[str] = []  # post-order: every node after the nodes it reads

    def node(self, node_id: str, *, is_output: bool = False) -> bool:
        if node_id in self.results:
            return self.results[node_id][0]
        self.results[node_id] = (True, [])  # guards against cycles
        node = self.graph[node_id]
        spec = self.defs[node["class_type"]]["input"]
        inputs = node.setdefault("inputs", {})
        errors: list[dict[str, Any]] = []
        valid = True
        for name, info in spec.get("required", {}).items():
            if name not in inputs:
                errors.append(
                    _err("required_input_missing", "Required input is missing", name,
                         input_name=name)
                )  # fmt: skip
                valid = False
                continue
            ok = self._input(node, name, info, errors, is_output=is_output)
            valid = valid and ok
        for name, info in spec.get("optional", {}).items():
            if name in inputs:
                ok = self._input(node, name, info, errors, is_output=is_output)
                valid = valid and ok
        self.results[node_id] = (valid and not errors, errors)
        self.finished.append(node_id)
        return valid and not errors

    def _input(
        self,
        node: dict[str, Any],
        name: str,
        info: list[Any],
        errors: list[dict[str, Any]],
        *,
        is_output: bool,
    ) -> bool:
        value = node["inputs"][name]
        kind = info[0]
        opts: dict[str, Any] = info[1] if len(info) > 1 else {}
        if isinstance(value, list):
            return self._link(name, info, value, errors, is_output=is_output)
        if isinstance(kind, str) and kind in ("INT", "FLOAT", "STRING", "BOOLEAN"):
            try:
                value = _coerce(kind, value)
            except (TypeError, ValueError) as exc:
                errors.append(_err(
                    "invalid_input_type", f"Failed to convert an input value to a {kind} value",
                    f"{name}, {value}, {exc}", input_name=name, input_config=info,
                    received_value=value, exception_message=str(exc),
                ))  # fmt: skip
                return False
            node["inputs"][name] = value
            if "min" in opts and value < opts["min"]:
                errors.append(_err(
                    "value_smaller_than_min", f"Value {value} smaller than min of {opts['min']}",
                    name, input_name=name, input_config=info, received_value=value,
                ))  # fmt: skip
                return False
            if "max" in opts and value > opts["max"]:
                errors.append(_err(
                    "value_bigger_than_max", f"Value {value} bigger than max of {opts['max']}",
                    name, input_name=name, input_config=info, received_value=value,
                ))  # fmt: skip
                return False
            return True
        if node["class_type"] == "LoadImage" and name == "image":
            if not self.input_exists(str(value)):
                errors.append(_err(
                    "custom_validation_failed", "Custom validation failed for node",
                    f"{name} - Invalid image file: {value}", input_name=name,
                ))  # fmt: skip
                return False
            return True
        options = (
            kind if isinstance(kind, list) else opts.get("options") if kind == "COMBO" else None
        )
        if options is not None and value not in options:
            shown = str(options) if len(options) <= 20 else f"(list of length {len(options)})"
            errors.append(_err(
                "value_not_in_list", "Value not in list", f"{name}: '{value}' not in {shown}",
                input_name=name, input_config=info if len(options) <= 20 else None,
                received_value=value,
            ))  # fmt: skip
            return False
        return True

    def _link(
        self,
        name: str,
        info: list[Any],
        value: list[Any],
        errors: list[dict[str, Any]],
        *,
        is_output: bool,
    ) -> bool:
        if len(value) != 2:
            errors.append(_err(
                "bad_linked_input",
                "Bad linked input, must be a length-2 list of [node_id, slot_index]", name,
                input_name=name, input_config=info, received_value=value,
            ))  # fmt: skip
            return False
        source_id, slot = str(value[0]), value[1]
        try:
            source = self.graph[source_id]
            received = self.defs[source["class_type"]]["output"][slot]
        except (KeyError, IndexError, TypeError) as exc:
            if self.legacy:  # 0.3.64: the exception escapes validate_inputs unnamed
                text = "tuple index out of range" if isinstance(exc, IndexError) else str(exc)
                errors.append(_err(
                    "exception_during_validation", "Exception when validating node", text,
                    exception_type=type(exc).__name__, traceback=[],
                ))  # fmt: skip
                return False
            kind, message = (
                ("exception_during_validation", "Exception when validating node")
                if is_output
                else ("exception_during_inner_validation", "Exception when validating inner node")
            )
            errors.append(_err(
                kind, message, str(exc), input_name=name, input_config=info,
                exception_message=str(exc), exception_type=type(exc).__name__, traceback=[],
                linked_node=value,
            ))  # fmt: skip
            return False
        expected = info[0] if isinstance(info[0], str) else "COMBO"
        if not types_match(received, expected):
            errors.append(_err(
                "return_type_mismatch", "Return type mismatch between linked nodes",
                f"{name}, received_type({received}) mismatch input_type({expected})",
                input_name=name, input_config=info, received_type=received, linked_node=value,
            ))  # fmt: skip
            return False
        return self.node(source_id)


def validate_prompt(
    graph: Any,
    defs: NodeDefs,
    *,
    input_exists: Callable[[str], bool],
    partial_targets: Sequence[str] | None = None,
    legacy: bool = False,
) -> Validation:
    """Validate an API-format graph; the returned ``graph`` holds the coerced values.

    ``legacy``: answer as ComfyUI 0.3.64 does (see :mod:`.comfyui_legacy`). In both
    dialects ``node_errors`` lists the most upstream failing node first.
    """
    if not isinstance(graph, dict):
        return _prompt_error("invalid_prompt", "Invalid prompt", "prompt must be an object")
    graph = copy.deepcopy(graph)
    for node_id, node in graph.items():
        title = node.get("_meta", {}).get("title") if isinstance(node, dict) else None
        if legacy and (not isinstance(node, dict) or "class_type" not in node):
            return _prompt_error(
                "invalid_prompt",
                "Cannot execute because a node is missing the class_type property.",
                f"Node ID '#{node_id}'",
            )
        if legacy and node["class_type"] not in defs:
            return _prompt_error(
                "invalid_prompt",
                f"Cannot execute because node {node['class_type']} does not exist.",
                f"Node ID '#{node_id}'",
            )
        if not isinstance(node, dict) or "class_type" not in node:
            return _prompt_error(
                "missing_node_type",
                f"Node '{title or f'ID #{node_id}'}' has no class_type. The workflow may be "
                "corrupted or a custom node is missing.",
                f"Node ID '#{node_id}'",
                node_id=node_id,
                class_type=None,
                node_title=title,
            )
        if node["class_type"] not in defs:
            cls = node["class_type"]
            return _prompt_error(
                "missing_node_type",
                f"Node '{title or cls}' not found. The custom node may not be installed.",
                f"Node ID '#{node_id}'",
                node_id=node_id,
                class_type=cls,
                node_title=title,
            )
    outputs = [i for i, n in graph.items() if defs[n["class_type"]].get("output_node")]
    if partial_targets is not None:
        outputs = [o for o in outputs if o in partial_targets]
    if not outputs:
        return _prompt_error("prompt_no_outputs", "Prompt has no outputs")
    checker = _Validator(graph, defs, input_exists, legacy=legacy)
    good: list[str] = []
    node_errors: dict[str, Any] = {}
    lines: list[str] = []
    for out in outputs:
        if checker.node(out, is_output=True):
            good.append(out)
            continue
        for node_id in checker.finished:
            ok, errors = checker.results[node_id]
            if ok or not errors:
                continue
            entry = node_errors.setdefault(
                node_id,
                {"errors": errors, "dependent_outputs": [],
                 "class_type": graph[node_id]["class_type"]},
            )  # fmt: skip
            if out not in entry["dependent_outputs"]:
                entry["dependent_outputs"].append(out)
        lines += [f"{e['message']}: {e['details']}" for e in checker.results[out][1]]
    if not good:
        error = {"type": "prompt_outputs_failed_validation",
                 "message": "Prompt outputs failed validation",
                 "details": "\n".join(lines), "extra_info": {}}  # fmt: skip
        return Validation(False, error, [], node_errors, graph)
    return Validation(True, None, good, node_errors, graph)
