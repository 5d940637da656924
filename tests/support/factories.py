"""Object factories for tests (on sys.path through pytest's ``pythonpath``)."""

from __future__ import annotations

from typing import Any


def pool_body(name: str, **spec: Any) -> dict[str, Any]:
    """A GpuPool for system tests: short timeouts, no budget, one canary step."""
    base: dict[str, Any] = {
        "replicas": 0,
        "idleTimeout": "1s",
        "hedge": 0,
        "offer": {"maxPricePerHour": 5.0, "minReliability": 0.9},
        "template": {"diskGb": 50},
        "readiness": {"timeout": "60s", "initialBackoff": "100ms", "maxBackoff": "500ms",
                      "canary": {"enabled": True, "steps": 2, "size": 128, "timeout": "30s"}},
        "failurePolicy": {"loadingTimeout": "60s", "hostCooldown": "1h"},
    }  # fmt: skip
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return {
        "apiVersion": "warmpool.dev/v1alpha1",
        "kind": "GpuPool",
        "metadata": {"name": name, "namespace": "default"},
        "spec": base,
    }
