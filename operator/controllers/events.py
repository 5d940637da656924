"""Kubernetes Events on warmpool objects, with stable reasons (posted by Kopf)."""

from __future__ import annotations

from typing import cast

import kopf

from warmpool.crds.common import API_VERSION, ObjectMeta


def event(kind: str, meta: ObjectMeta, reason: str, message: str, *, warning: bool = False) -> None:
    """A Kubernetes Event with a stable reason on a warmpool object (posted by Kopf)."""
    body = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid},
    }
    post = kopf.warn if warning else kopf.info
    post(cast(kopf.Body, body), reason=reason, message=message[:1000])
