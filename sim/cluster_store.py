"""The object store behind the emulated Kubernetes API (no HTTP here).

What a real API server does on writes and a stock KMock emulator does not: schema pruning,
defaulting and validation (422), status-subresource semantics, ``metadata.generation``, ``uid``,
``creationTimestamp``, a cluster-wide monotonic ``resourceVersion`` with 409 on stale writes,
finalizers with ``deletionTimestamp``, owner references with cascading deletion, and a per-kind
event log so that watches can resume from a ``resourceVersion``.

Stored objects are never mutated in place: every write stores a new dict, so event payloads
and list items can be handed out without copying.
"""

from __future__ import annotations

import builtins
import collections
import copy
import json
import secrets
import string
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from warmpool.sim.cluster_ops import Matcher, now_rfc3339
from warmpool.sim.cluster_resources import BUILTINS, ResourceType, types_from_crd

__all__ = ["ApiError", "Event", "Store", "Watcher"]

TypeKey = tuple[str, str, str]  # group, version, plural
ObjKey = tuple[str | None, str]  # namespace, name
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
CRD_KEY: TypeKey = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
NS_KEY: TypeKey = ("", "v1", "namespaces")


class ApiError(Exception):
    """An API failure rendered as a Kubernetes ``Status`` body."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def not_found(rt: ResourceType, name: str) -> ApiError:
    details = {"name": name, "group": rt.group, "kind": rt.plural}
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', details)


def conflict(rt: ResourceType, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, {"name": name, "group": rt.group, "kind": rt.plural})


@dataclass
class Event:
    rv: int
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None
    _line: bytes | None = None

    def line(self, type_: str | None = None) -> bytes:
        if type_ is not None and type_ != self.type:
            return json.dumps({"type": type_, "object": self.obj}).encode() + b"\n"
        if self._line is None:
            self._line = json.dumps({"type": self.type, "object": self.obj}).encode() + b"\n"
        return self._line


@dataclass(eq=False)
class Watcher:
    namespace: str | None
    matchers: tuple[Matcher, ...]
    queue: collections.deque[Event | None] = field(default_factory=collections.deque)
    wakeup: Callable[[], None] | None = None

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return all(m(obj) for m in self.matchers)

    def translate(self, event: Event) -> bytes | None:
        """The event line as this watcher sees it (selectors turn MODIFIED into ADDED/DELETED)."""
        new_ok = self.matches(event.obj)
        if event.type != "MODIFIED":
            return event.line() if new_ok else None
        old_ok = self.matches(event.old)
        if new_ok and old_ok:
            return event.line()
        if new_ok:
            return event.line("ADDED")
        if old_ok:
            return event.line("DELETED")
        return None


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class Store:
    """All objects of the emulated cluster, by kind, namespace and name."""

    def __init__(self, *, event_log_size: int = 10_000) -> None:
        self.types: dict[TypeKey, ResourceType] = {}
        self.by_kind: dict[tuple[str, str], ResourceType] = {}  # (apiVersion, kind)
        self.objects: dict[TypeKey, dict[ObjKey, dict[str, Any]]] = {}
        self.uids: dict[str, tuple[TypeKey, ObjKey]] = {}
        self.rv = 0
        self.logs: dict[TypeKey, collections.deque[Event]] = {}
        self.floors: dict[TypeKey, int] = {}
        self.watchers: dict[TypeKey, set[Watcher]] = {}
        self.event_log_size = event_log_size
        self.on_change: list[Callable[[ResourceType, Event], None]] = []
        for rt in BUILTINS:
            self.register(rt)
        for ns in SYSTEM_NAMESPACES:
            self.create(self.types[NS_KEY], {"metadata": {"name": ns}})

    # --- kinds ----------------------------------------------------------------------------

    def register(self, rt: ResourceType) -> None:
        self.types[rt.key] = rt
        self.by_kind[(rt.api_version, rt.kind)] = rt
        self.objects.setdefault(rt.key, {})
        self.logs.setdefault(rt.key, collections.deque())
        self.floors.setdefault(rt.key, self.rv)
        self.watchers.setdefault(rt.key, set())

    def unregister_crd(self, crd_name: str) -> None:
        for key, rt in list(self.types.items()):
            if rt.crd_name == crd_name:
                for _, obj in list(self.objects[key].items()):
                    self._remove(rt, obj)
                del self.types[key]
                self.by_kind.pop((rt.api_version, rt.kind), None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.types.get((group, version, plural))

    # --- reading --------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.objects[rt.key].get((namespace if rt.namespaced else None, name))
        if obj is None:
            raise not_found(rt, name)
        return obj

    def list(
        self, rt: ResourceType, namespace: str | None, matchers: tuple[Matcher, ...] = ()
    ) -> list[dict[str, Any]]:
        items = [
            obj
            for (ns, _), obj in sorted(self.objects[rt.key].items(), key=lambda kv: kv[0][1])
            if namespace is None or ns == namespace
            if all(m(obj) for m in matchers)
        ]
        if namespace is None:
            items.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        return items

    # --- writing --------------------------------------------------------------------------

    def _publish(self, rt: ResourceType, type_: str, obj: dict[str, Any], old: Any) -> None:
        event = Event(self.rv, type_, obj, old)
        log = self.logs[rt.key]
        log.append(event)
        while len(log) > self.event_log_size:
            self.floors[rt.key] = log.popleft().rv
        for watcher in self.watchers[rt.key]:
            watcher.queue.append(event)
            if watcher.wakeup is not None:
                watcher.wakeup()
        for callback in self.on_change:
            callback(rt, event)

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _check_schema(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        field_validation: str | None = None,
    ) -> None:
        if rt.schema is None:
            return
        pruned: list[str] = []
        rt.schema.prune_and_default(obj, pruned)
        if pruned and field_validation == "Strict":
            unknown = ", ".join(f'unknown field "{p}"' for p in pruned)
            raise ApiError(
                400,
                "BadRequest",
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {unknown}",
            )
        causes = rt.schema.validate(obj, old)
        if causes:
            name = obj["metadata"].get("name", "")
            rendered = [c.render() for c in causes]
            text = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
            raise ApiError(
                422,
                "Invalid",
                f'{rt.kind}.{rt.group} "{name}" is invalid: {text}',
                {
                    "name": name,
                    "group": rt.group,
                    "kind": rt.kind,
                    "causes": [c.as_dict() for c in causes],
                },
            )

    def create(
        self,
        rt: ResourceType,
        body: Any,
        namespace: str | None = None,
        *,
        keep_status: bool = False,
        field_validation: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Store a new object; ``dry_run``: everything but storing it (admission sees this)."""
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if namespace and body_ns and body_ns != namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request",
                )
            namespace = namespace or body_ns or "default"
            if (None, namespace) not in self.objects[NS_KEY]:
                raise not_found(self.types[NS_KEY], namespace)
            meta["namespace"] = namespace
        else:
            namespace = None
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(
                secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5)
            )
            meta["name"] = f"{meta['generateName']}{suffix}"
        name = meta.get("name")
        if not name or not isinstance(name, str):
            raise ApiError(
                422,
                "Invalid",
                f"{rt.kind} is invalid: metadata.name: Required value: name or generateName is "
                "required",
                {
                    "kind": rt.kind,
                    "group": rt.group,
                    "causes": [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value",
                            "field": "metadata.name",
                        }
                    ],
                },
            )
        if (namespace, name) in self.objects[rt.key]:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{rt.qualified} "{name}" already exists',
                {"name": name, "group": rt.group, "kind": rt.plural},
            )
        for server_field in ("resourceVersion", "uid", "deletionTimestamp", "generation"):
            meta.pop(server_field, None)
        if rt.status_subresource and not keep_status:
            obj.pop("status", None)
        self._check_schema(rt, obj, None, field_validation)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.custom:
            meta["generation"] = 1
        if dry_run:
            return obj
        meta["resourceVersion"] = self._next_rv()
        if rt.key == CRD_KEY:
            self._install_crd(obj)
        self.objects[rt.key][(namespace, name)] = obj
        self.uids[meta["uid"]] = (rt.key, (namespace, name))
        self._publish(rt, "ADDED", obj, None)
        return obj

    def _install_crd(self, crd: dict[str, Any]) -> None:
        for rt in types_from_crd(crd):
            self.register(rt)
        names = crd["spec"]["names"]
        crd["status"] = {
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "reason": r,
                    "message": m,
                    "lastTransitionTime": now_rfc3339(),
                }
                for t, r, m in (
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                )
            ],
        }

    def update(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        new: Any,
        *,
        subresource: str | None = None,
        require_rv: bool = False,
        field_validation: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Store ``new`` as the next state of ``old`` (PUT, or the result of a PATCH);
        ``dry_run``: return the state it would store, storing nothing."""
        if not isinstance(new, dict) or not isinstance(new.get("metadata", {}), dict):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
        old_meta = old["metadata"]
        name = old_meta["name"]
        given_rv = (new.get("metadata") or {}).get("resourceVersion")
        if require_rv and not given_rv and rt.custom:
            raise ApiError(
                422,
                "Invalid",
                f'{rt.kind}.{rt.group} "{name}" is invalid: metadata.resourceVersion: Invalid '
                "value: 0x0: must be specified for an update",
                {
                    "name": name,
                    "group": rt.group,
                    "kind": rt.kind,
                    "causes": [
                        {
                            "reason": "FieldValueInvalid",
                            "field": "metadata.resourceVersion",
                            "message": "Invalid value: 0x0: must be specified for an update",
                        }
                    ],
                },
            )
        if given_rv and str(given_rv) != old_meta["resourceVersion"]:
            raise conflict(rt, name)
        if (new.get("metadata") or {}).get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        if subresource == "status":
            obj = copy.deepcopy(old)
            if "status" in new:
                obj["status"] = copy.deepcopy(new["status"])
            else:
                obj.pop("status", None)
        else:
            obj = copy.deepcopy(new)
            meta = obj.setdefault("metadata", {})
            for key in (
                "uid",
                "creationTimestamp",
                "name",
                "namespace",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ):
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
            if rt.status_subresource:
                if "status" in old:
                    obj["status"] = old["status"]
                else:
                    obj.pop("status", None)
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
                if added:
                    raise ApiError(
                        422,
                        "Invalid",
                        f'{rt.kind}.{rt.group} "{name}" is invalid: metadata.finalizers: '
                        "Forbidden: no new finalizers can be added if the object is being deleted",
                    )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        obj["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        self._check_schema(rt, obj, old, field_validation)
        if obj == old:
            return old  # a no-op write changes nothing, not even the resourceVersion
        if rt.custom and _spec_part(obj) != _spec_part(old):
            obj["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        if dry_run:
            return obj
        obj["metadata"]["resourceVersion"] = self._next_rv()
        obj_key = (old_meta.get("namespace"), name)
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
            self._remove(rt, obj)
            return obj
        self.objects[rt.key][obj_key] = obj
        self._publish(rt, "MODIFIED", obj, old)
        return obj

    def delete(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        *,
        propagation: str = "Background",
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise conflict(rt, meta["name"])
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != meta["resourceVersion"]:
            raise conflict(rt, meta["name"])
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return obj
            new = copy.deepcopy(obj)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["metadata"]["resourceVersion"] = self._next_rv()
            self.objects[rt.key][(meta.get("namespace"), meta["name"])] = new
            self._publish(rt, "MODIFIED", new, obj)
            return new
        new = copy.deepcopy(obj)
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._remove(rt, new, orphan=propagation == "Orphan")
        return new

    def _remove(self, rt: ResourceType, obj: dict[str, Any], *, orphan: bool = False) -> None:
        meta = obj["metadata"]
        self.objects[rt.key].pop((meta.get("namespace"), meta["name"]), None)
        self.uids.pop(meta.get("uid", ""), None)
        self._publish(rt, "DELETED", obj, None)
        if rt.key == CRD_KEY:
            self.unregister_crd(meta["name"])
        elif rt.key == NS_KEY:
            for key, objs in self.objects.items():
                for ns, _ in list(objs):
                    if ns == meta["name"] and (ns, _) in objs:
                        self.delete(self.types[key], objs[(ns, _)])
        self._collect_dependents(meta.get("uid", ""), orphan=orphan)

    def _collect_dependents(self, uid: str, *, orphan: bool) -> None:
        """Garbage collection: delete (or orphan) the objects owned by a removed ``uid``."""
        for key, dependent in list(self._dependents(uid)):
            rt = self.types.get(key)
            live = self.objects.get(key, {}).get(
                (dependent["metadata"].get("namespace"), dependent["metadata"]["name"])
            )
            if rt is None or live is not dependent:
                continue  # already gone or replaced during this cascade
            refs = live["metadata"].get("ownerReferences") or []
            if orphan:
                kept = [r for r in refs if r.get("uid") != uid]
                new = copy.deepcopy(live)
                new["metadata"]["ownerReferences"] = kept
                if not kept:
                    del new["metadata"]["ownerReferences"]
                self.update(rt, live, new)
            elif all(r.get("uid") not in self.uids for r in refs):
                self.delete(rt, live)

    def _dependents(self, uid: str) -> Iterator[tuple[TypeKey, dict[str, Any]]]:
        for key, objs in self.objects.items():
            for obj in list(objs.values()):
                refs = obj["metadata"].get("ownerReferences")
                if refs and any(r.get("uid") == uid for r in refs):
                    yield key, obj

    # --- watching -------------------------------------------------------------------------

    def events_since(self, rt: ResourceType, rv: int) -> builtins.list[Event] | None:
        """The logged events after ``rv``, or ``None`` when ``rv`` is older than the log."""
        if rv < self.floors[rt.key]:
            return None
        return [e for e in self.logs[rt.key] if e.rv > rv]
