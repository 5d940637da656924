"""A pool's labels follow it onto its GpuInstances (a shard's selector picks both)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from warmpool.operator.decisions import labels

POOL = "warmpool.dev/pool"


def meta(current: dict[str, str], copied: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"labels": current}
    if copied is not None:
        out["annotations"] = {labels.COPIED: json.dumps(copied)}
    return out


@pytest.mark.parametrize(
    ("pool_labels", "current", "copied", "expected"),
    [
        pytest.param({"tier": "gold"}, {"tier": "gold", POOL: "p"}, ["tier", POOL], None,
                     id="in-step"),
        pytest.param({"tier": "silver"}, {"tier": "gold", POOL: "p"}, ["tier", POOL],
                     {"tier": "silver"}, id="relabelled"),
        pytest.param({}, {"tier": "gold", POOL: "p"}, ["tier", POOL], {"tier": None},
                     id="label-dropped"),
        pytest.param({}, {"tier": "gold", "owner": "ann", POOL: "p"}, ["tier", POOL],
                     {"tier": None}, id="hand-put-label-stays"),
        pytest.param({"zone": "eu"}, {"tier": "gold", POOL: "p"}, None, {"zone": "eu"},
                     id="older-instance-keeps-what-it-has"),
    ],
)  # fmt: skip
def test_plan_labels(
    pool_labels: dict[str, str],
    current: dict[str, str],
    copied: list[str] | None,
    expected: dict[str, Any] | None,
) -> None:
    patch = labels.plan_labels(pool_labels, "p", meta(current, copied))
    if expected is None:
        assert patch is None
        return
    assert patch is not None
    assert patch["labels"] == expected
    assert json.loads(patch["annotations"][labels.COPIED]) == sorted({**pool_labels, POOL: "p"})


def test_an_older_instance_gets_the_annotation_once() -> None:
    patch = labels.plan_labels({"tier": "gold"}, "p", meta({"tier": "gold", POOL: "p"}, None))
    keys = json.dumps(sorted([POOL, "tier"]))
    assert patch == {"labels": {}, "annotations": {labels.COPIED: keys}}
