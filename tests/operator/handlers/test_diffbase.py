"""Kopf's diff-base is skipped for the kinds no changing handler watches (GenerationJob)."""

from __future__ import annotations

import kopf

from warmpool.operator import main  # noqa: F401 (imports every handler module)
from warmpool.operator.controllers import shards
from warmpool.operator.handlers.registry import GENERATIONJOBS, registry

STORAGE = shards.DiffBase(prefix="warmpool.dev", key="last-handled-configuration")


def _body(kind: str) -> kopf.Body:
    return kopf.Body({
        "apiVersion": "warmpool.dev/v1alpha1", "kind": kind,
        "metadata": {"name": "x", "namespace": "team", "labels": {"a": "b"}},
        "spec": {"pool": "p", "prompt": "a cat"}, "status": {"phase": "Running"},
    })  # fmt: skip


def test_a_job_has_no_essence_to_compare() -> None:
    body = _body("GenerationJob")
    assert STORAGE.build(body=body) == {}
    assert STORAGE.fetch(body=body) == {}


def test_other_kinds_keep_kopfs_essence() -> None:
    essence = STORAGE.build(body=_body("GpuPool"))
    assert essence["spec"] == {"pool": "p", "prompt": "a cat"}
    assert "status" not in essence
    assert STORAGE.fetch(body=_body("GpuPool")) is None  # nothing handled yet


def test_no_changing_or_daemon_handler_watches_the_skipped_kinds() -> None:
    """Skipping the diff-base is only right while nothing reacts to a job's changes: a
    changing handler (on.create/update/field/delete) or a daemon on jobs would never fire."""
    plural = GENERATIONJOBS[-1]
    assert set(shards.NO_DIFF_KINDS) == {"GenerationJob"}
    handlers = [*registry._changing.get_all_handlers(), *registry._spawning.get_all_handlers()]
    watched = {h.selector.any_name or h.selector.plural for h in handlers if h.selector}
    assert watched, "the registry lists the changing handlers"
    assert plural not in watched
