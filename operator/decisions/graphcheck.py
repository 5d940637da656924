"""Checks of an API-format graph against a ``/object_info`` catalogue (pure).

What a real ComfyUI refuses at ``POST /prompt`` before anything runs, found without a
server: unknown classes, missing or unknown inputs, bad links, choices and bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _literal_problem(name: str, value: Any, spec: list[Any]) -> str | None:
    kind = spec[0]
    opts: Mapping[str, Any] = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    options = kind if isinstance(kind, list) else opts.get("options") if kind == "COMBO" else None
    if options is not None:
        return None if value in options else f"input {name!r}: {value!r} is not a choice"
    if kind == "INT" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"input {name!r}: {value!r} is not an INT"
    if kind == "FLOAT" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"input {name!r}: {value!r} is not a FLOAT"
    if kind == "STRING" and not isinstance(value, str):
        return f"input {name!r}: {value!r} is not a STRING"
    if kind == "BOOLEAN" and not isinstance(value, bool):
        return f"input {name!r}: {value!r} is not a BOOLEAN"
    if kind in ("INT", "FLOAT"):
        if "min" in opts and value < opts["min"]:
            return f"input {name!r}: {value} is below the minimum {opts['min']}"
        if "max" in opts and value > opts["max"]:
            return f"input {name!r}: {value} is above the maximum {opts['max']}"
    if isinstance(kind, str) and kind not in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"):
        return f"input {name!r}: a {kind} input needs a link, not a value"
    return None


def _types_match(received: str, expected: str) -> bool:
    if received == expected or "*" in (received, expected):
        return True
    return set(received.split(",")) <= set(expected.split(","))


def validate_graph(graph: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[str]:
    """Problems of ``graph`` against a ``/object_info`` catalogue; empty means valid.

    Checks that every class exists, required inputs are present, no unknown inputs are
    sent, links point at existing outputs of a matching type, choices are valid and
    numbers respect their bounds, and that at least one output node exists.
    """
    problems: list[str] = []
    outputs = 0
    for node_id, node in graph.items():
        cls = node.get("class_type")
        where = f"node {node_id} ({cls})"
        if cls not in object_info:
            problems.append(f"{where}: unknown node class")
            continue
        definition = object_info[cls]
        outputs += bool(definition.get("output_node"))
        required: Mapping[str, Any] = definition["input"].get("required", {})
        optional: Mapping[str, Any] = definition["input"].get("optional", {})
        inputs: Mapping[str, Any] = node.get("inputs", {})
        problems += [f"{where}: input {n!r} is missing" for n in required if n not in inputs]
        for name, value in inputs.items():
            spec = required.get(name, optional.get(name))
            if spec is None:
                problems.append(f"{where}: input {name!r} is unknown")
            elif isinstance(value, list):
                problem = _link_problem(name, value, spec, graph, object_info)
                if problem:
                    problems.append(f"{where}: {problem}")
            elif _is_subfolder_upload(cls, name, value):
                continue  # the server checks the file itself, not the COMBO list
            else:
                problem = _literal_problem(name, value, spec)
                if problem:
                    problems.append(f"{where}: {problem}")
    if outputs == 0:
        problems.append("graph has no output node")
    return problems


def _is_subfolder_upload(cls: str, name: str, value: Any) -> bool:
    """``LoadImage`` of ``"<subfolder>/<name>"``: a real server accepts it although its
    COMBO lists only the top of ``input/`` (``LoadImage.VALIDATE_INPUTS`` checks the file)."""
    return (
        cls == "LoadImage"
        and name == "image"
        and isinstance(value, str)
        and "/" in value.strip("/")
        and ".." not in value.split("/")
    )


def _link_problem(
    name: str,
    link: list[Any],
    spec: list[Any],
    graph: Mapping[str, Any],
    object_info: Mapping[str, Any],
) -> str | None:
    if len(link) != 2 or not isinstance(link[1], int):
        return f"input {name!r}: a link must be [node_id, slot]"
    source = graph.get(str(link[0]))
    if source is None:
        return f"input {name!r}: links to missing node {link[0]}"
    source_def = object_info.get(source.get("class_type"))
    if source_def is None:
        return None  # reported on the source node itself
    outs = source_def.get("output", [])
    if not 0 <= link[1] < len(outs):
        return f"input {name!r}: node {link[0]} has no output {link[1]}"
    expected = spec[0] if isinstance(spec[0], str) else "COMBO"
    if not _types_match(outs[link[1]], expected):
        return f"input {name!r}: expects {expected}, node {link[0]} gives {outs[link[1]]}"
    return None
