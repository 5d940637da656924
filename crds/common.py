"""Pieces shared by every custom resource: durations, times, conditions, labels, the API group.

Durations are strings such as ``15m``, ``90s``, ``1h30m`` or ``500ms``; they are
parsed here and nowhere else (:func:`parse_duration`). Times are RFC 3339 strings;
:func:`format_time` and :func:`parse_time` are the one codec, for the operator's
controllers and its decisions alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, cast, overload

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, StringConstraints
from pydantic.alias_generators import to_camel

GROUP = "warmpool.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "warmpool"

#: Label on every GpuInstance (and Vast.ai rental label prefix) naming the pool.
POOL_LABEL = "warmpool.dev/pool"

#: Vast.ai label of a rental: warmpool.<namespace>.<pool>.<GpuInstance uid>.
LABEL_ROOT = "warmpool"


def rental_label(namespace: str, pool: str, uid: str) -> str:
    """The idempotency label of the rental behind a GpuInstance."""
    return f"{LABEL_ROOT}.{namespace}.{pool}.{uid}"


def uid_of_label(label: str | None) -> str | None:
    """The GpuInstance uid in a rental label, None when it is not one of ours."""
    if not label or not label.startswith(f"{LABEL_ROOT}."):
        return None
    parts = label.split(".")
    return parts[-1] if len(parts) >= 4 else None


def namespace_of_label(label: str | None) -> str | None:
    """The GpuInstance namespace in a rental label, None when it is not one of ours."""
    if uid_of_label(label) is None:
        return None
    assert label is not None
    return label.split(".")[1]  # a namespace holds no dot; a pool name may


def pool_selector(pool: str) -> str:
    """The label selector of a pool's GpuInstances (also its scale selector)."""
    return f"{POOL_LABEL}={pool}"


def owner_reference(body: Mapping[str, Any], *, controller: bool = True) -> dict[str, Any]:
    """An owner reference to ``body`` (cascading deletion)."""
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": body["metadata"]["name"],
        "uid": body["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


@overload
def format_time(when: datetime) -> str: ...
@overload
def format_time(when: None) -> None: ...
def format_time(when: datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``, as Kubernetes writes times: whole seconds, with the
    microseconds when there are any (``2024-05-01T12:00:00Z``,
    ``2024-05-01T12:00:00.250000Z``). None stays None (a field cleared)."""
    if when is None:
        return None
    text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{when.microsecond:06d}Z" if when.microsecond else f"{text}Z"


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time`: any RFC 3339 text (an offset, a ``Z``, or none:
    UTC) into an aware datetime. Raises ValueError when it is not a time."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_optional_time(text: str | None) -> datetime | None:
    """:func:`parse_time` of a status field that may be unset (None or empty)."""
    return parse_time(text) if text else None


def merge_conditions(
    existing: list[dict[str, Any]],
    updates: list[tuple[str, str, str, str]],
    *,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Conditions after ``updates`` (type, status, reason, message).

    ``lastTransitionTime`` moves only when a condition's status changes.
    """
    by_type = {c.get("type"): dict(c) for c in existing}
    for ctype, status, reason, message in updates:
        old = by_type.get(ctype)
        changed = old is None or old.get("status") != status
        by_type[ctype] = {
            "type": ctype,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": format_time(now)
            if changed
            else old.get("lastTransitionTime")
            if old
            else format_time(now),
            "observedGeneration": generation,
        }
    return list(by_type.values())


DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
MAX_DURATION_DAYS = 3650
MAX_DURATION_SECONDS = MAX_DURATION_DAYS * 86400.0
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> timedelta:
    """Parse ``1h30m``, ``90s``, ``15m``, ``2d``, ``250ms`` into a timedelta.

    Raises ValueError naming the text when it is not a duration.
    """
    if not isinstance(text, str) or not re.fullmatch(DURATION_PATTERN, text.strip()):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 1h30m)")
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text.strip()))
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"not a duration: {text!r} is longer than {MAX_DURATION_DAYS} days")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The inverse of :func:`parse_duration` for whole seconds (``5400s`` → ``1h30m``)."""
    total = int(delta.total_seconds())
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        n, total = divmod(total, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


#: A duration string in a spec; validated by the model and by the CRD pattern.
Duration = Annotated[
    str,
    StringConstraints(pattern=DURATION_PATTERN, max_length=32),
    AfterValidator(_check_duration),
]


class CamelModel(BaseModel):
    """Base of every spec/status model: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        validate_default=True,
    )


def with_rules(*rules: dict[str, str]) -> ConfigDict:
    """The model config of a CamelModel carrying CEL rules (``x-kubernetes-validations``).

    The same rules must be enforced by a pydantic validator on the model, so that the
    studio and the operator refuse what the API server refuses.
    """
    validations: list[JsonValue] = [cast("JsonValue", dict(rule)) for rule in rules]
    return ConfigDict(
        **CamelModel.model_config, json_schema_extra={"x-kubernetes-validations": validations}
    )


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(CamelModel):
    """A condition in the Kubernetes convention."""

    type: str = Field(description="Condition type, e.g. Ready, Degraded, BudgetExceeded.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field("", description="One CamelCase word: why the condition is so.")
    message: str = Field("", description="Human-readable details.")
    last_transition_time: str | None = Field(
        None, description="When status last changed (RFC 3339)."
    )
    observed_generation: int | None = Field(
        None, description="metadata.generation the condition was computed from."
    )


class ObjectMeta(BaseModel):
    """The parts of metadata the models read (the rest is passed through)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str = ""
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: str | None = Field(None, alias="creationTimestamp")
    deletion_timestamp: str | None = Field(None, alias="deletionTimestamp")
