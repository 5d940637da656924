"""The kinds the code base reads and writes (:class:`Resource` and its constants), the watch
event, and the HTTP status → ``Kube*Error`` table. Re-exported by
:mod:`warmpool.operator.adapters.kube`, the facade everyone imports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from warmpool.crds.common import GROUP, VERSION
from warmpool.crds.schema import KINDS
from warmpool.operator import errors

__all__ = [
    "CRDS",
    "EVENTS",
    "GENERATIONJOBS",
    "GPUINSTANCES",
    "GPUPOOLS",
    "LEASES",
    "MUSES",
    "NAMESPACES",
    "SECRETS",
    "STATUS_ERRORS",
    "Obj",
    "Resource",
    "WatchEvent",
    "error_for",
]

Obj = dict[str, Any]


# ---------------------------------------------------------------- resources


@dataclass(frozen=True)
class Resource:
    """One kind as the API server serves it. ``group`` is ``""`` for the core group."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path: ``/apis/g/v[/namespaces/ns]/plural[/name[/sub]]``."""
        parts = ["/api/v1" if not self.group else f"/apis/{self.group}/{self.version}"]
        if self.namespaced and namespace is not None:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
            if subresource is not None:
                parts.append(subresource)
        elif subresource is not None:
            raise ValueError("a subresource needs an object name")
        return "/".join(parts)


def _custom(kind: str) -> Resource:
    (spec,) = [k for k in KINDS if k.kind == kind]
    return Resource(GROUP, VERSION, spec.plural, spec.kind, namespaced=True)


GPUPOOLS: Final = _custom("GpuPool")
GPUINSTANCES: Final = _custom("GpuInstance")
GENERATIONJOBS: Final = _custom("GenerationJob")
MUSES: Final = _custom("Muse")
SECRETS: Final = Resource("", "v1", "secrets", "Secret")
EVENTS: Final = Resource("", "v1", "events", "Event")
NAMESPACES: Final = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
LEASES: Final = Resource("coordination.k8s.io", "v1", "leases", "Lease")
#: Kopf's peering objects: cluster-wide operators meet in a ClusterKopfPeering, namespaced
#: ones in a KopfPeering of each namespace they serve.
CLUSTER_KOPF_PEERINGS: Final = Resource(
    "kopf.dev", "v1", "clusterkopfpeerings", "ClusterKopfPeering", namespaced=False
)
KOPF_PEERINGS: Final = Resource("kopf.dev", "v1", "kopfpeerings", "KopfPeering")
CRDS: Final = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)


@dataclass(frozen=True)
class WatchEvent:
    """One line of a watch stream: ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK``."""

    type: str
    object: Obj


# ---------------------------------------------------------------- errors

STATUS_ERRORS: Final[Mapping[int, type[errors.KubeError]]] = {
    401: errors.KubeForbiddenError,
    403: errors.KubeForbiddenError,
    404: errors.KubeNotFoundError,
    409: errors.KubeConflictError,
    410: errors.KubeGoneError,
    422: errors.KubeInvalidError,
    429: errors.KubeUnavailableError,
}


def error_for(status: int, body: Any, *, what: str) -> errors.KubeError:
    """The error for an HTTP status (or a watch ``ERROR``) with its Status body."""
    st: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    reason = str(st.get("reason") or "")
    detail = str(st.get("message") or reason or f"HTTP {status}")
    message = f"{what}: {status} {detail}"
    cls = STATUS_ERRORS.get(status) or (
        errors.KubeUnavailableError if status >= 500 else errors.KubeError
    )
    if cls is errors.KubeInvalidError:
        details = st.get("details")
        causes = details.get("causes") if isinstance(details, Mapping) else None
        return errors.KubeInvalidError(
            message,
            status=status,
            reason=reason or "Invalid",
            causes=[
                {str(k): str(v) for k, v in c.items()}
                for c in (causes if isinstance(causes, list) else [])
                if isinstance(c, Mapping)
            ],
        )
    return cls(message, status=status, reason=reason)
