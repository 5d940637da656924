"""The pool's validated model is reused only while its resourceVersion holds."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from factories import pool_body

from warmpool.api.jobs import validated_pool
from warmpool.api.state import Studio


def versioned(version: str | None, replicas: int) -> dict[str, Any]:
    body = pool_body("sdxl", replicas=replicas)
    if version is not None:
        body["metadata"]["resourceVersion"] = version
    return body


def test_the_same_version_is_validated_once_and_a_new_one_again() -> None:
    studio = cast(Studio, SimpleNamespace(validated_pools={}))
    first = validated_pool(studio, versioned("7", replicas=1))
    assert validated_pool(studio, versioned("7", replicas=1)) is first
    moved = validated_pool(studio, versioned("8", replicas=3))
    assert moved is not first and moved.spec.replicas == 3
    assert validated_pool(studio, versioned("8", replicas=3)) is moved


def test_a_body_without_a_version_is_never_cached() -> None:
    studio = cast(Studio, SimpleNamespace(validated_pools={}))
    one = validated_pool(studio, versioned(None, replicas=1))
    two = validated_pool(studio, versioned(None, replicas=2))
    assert (one.spec.replicas, two.spec.replicas) == (1, 2)
    assert studio.validated_pools == {}
