"""CEL rules of ``x-kubernetes-validations``, evaluated as a Kubernetes API server does.

A rule sits at a node of a CRD's ``openAPIV3Schema``; ``self`` is the value at that node and,
for transition rules (those that mention ``oldSelf``), ``oldSelf`` is the stored value at the same
node before the update. Transition rules are skipped on create and where no old value exists.

The expressions run on the ``common-expression-language`` package (import name ``cel``, a Rust
implementation). Programs are compiled once per expression and cached. Of the Kubernetes
CEL list library, ``<list>.sum()`` is added (the package's standard library lacks it).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cel

__all__ = ["CelRule", "CelRuleError", "compile_expression", "evaluate"]


class CelRuleError(ValueError):
    """A rule does not compile, or its evaluation fails (not: evaluates to false)."""


@functools.lru_cache(maxsize=1024)
def compile_expression(expression: str) -> Any:
    """Compile a CEL expression into a reusable program (cached)."""
    try:
        return cel.compile(expression)
    except (ValueError, RuntimeError) as e:
        raise CelRuleError(f"compilation failed: {e}") from e


def _sum(values: list[Any]) -> Any:
    """Kubernetes' ``<list>.sum()``: integers add to an integer, doubles to a double."""
    if not isinstance(values, list):
        raise TypeError("sum() applies to a list")
    return sum(values, 0)


def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate an expression with the given variables (``self``, ``oldSelf``)."""
    program = compile_expression(expression)
    context = cel.Context()
    context.add_function("sum", _sum)
    for name, value in variables.items():
        context.add_variable(name, value)
    try:
        return program.execute(context)
    except Exception as e:  # the extension raises KeyError, TypeError, ValueError, RuntimeError
        raise CelRuleError(f"evaluation failed: {type(e).__name__}: {e}") from e


@dataclass(frozen=True)
class CelRule:
    """One entry of ``x-kubernetes-validations``, compiled."""

    rule: str
    message: str | None = None
    message_expression: str | None = None
    reason: str = "FieldValueInvalid"
    field_path: str = ""
    optional_old_self: bool = False

    @classmethod
    def from_schema(cls, entry: Mapping[str, Any]) -> CelRule:
        """Build (and compile, so that bad rules fail at CRD load) from a schema entry."""
        rule = cls(
            rule=str(entry["rule"]),
            message=entry.get("message"),
            message_expression=entry.get("messageExpression"),
            reason=str(entry.get("reason") or "FieldValueInvalid"),
            field_path=str(entry.get("fieldPath") or ""),
            optional_old_self=bool(entry.get("optionalOldSelf", False)),
        )
        compile_expression(rule.rule)
        return rule

    @functools.cached_property
    def is_transition(self) -> bool:
        """Whether the rule mentions ``oldSelf`` (and thus applies only to updates)."""
        return "oldSelf" in compile_expression(self.rule).variables()

    def check(self, value: Any, *, old: Any = None, has_old: bool = False) -> str | None:
        """Return ``None`` when the rule holds (or does not apply), else the failure message."""
        variables: dict[str, Any] = {"self": value}
        if self.is_transition:
            if not has_old:
                return None
            variables["oldSelf"] = old
        try:
            result = evaluate(self.rule, variables)
        except CelRuleError as e:
            return f"{self.rule}: {e}"
        if result is True:
            return None
        if self.message_expression:
            try:
                message = evaluate(self.message_expression, variables)
            except CelRuleError:
                message = None
            if isinstance(message, str) and message:
                return message
        return self.message or f"failed rule: {self.rule}"
