"""Protobuf request bodies of built-in kinds, as kubectl's typed commands send them.

``kubectl create secret generic``, ``create configmap`` and ``create namespace`` build a
typed object and POST it as ``application/vnd.kubernetes.protobuf`` (kubectl 1.33 does not
fall back to JSON, not even on 415). A real API server decodes it; so does this module, for
the built-in kinds the emulated API serves with a typed command: Secret, ConfigMap and
Namespace. Answers stay JSON, which kubectl accepts (its ``Accept`` lists JSON too).

The wire format: the four bytes ``k8s\\0``, then a ``runtime.Unknown`` message (``typeMeta``
with ``apiVersion`` and ``kind``, ``raw`` with the object's own message). The messages are
declared below with the field numbers of Kubernetes' ``generated.proto`` files (stable across
releases: fields are never renumbered) and decoded by the ``protobuf`` library;
``json_format`` then gives the object's JSON form (``bytes`` as base64, as Secret ``data``
is in JSON).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message, message_factory

__all__ = ["MAGIC", "PROTOBUF", "ProtobufError", "decode", "is_protobuf"]

PROTOBUF = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _BYTES, _INT64, _INT32, _BOOL, _MESSAGE = (
    _F.TYPE_STRING,
    _F.TYPE_BYTES,
    _F.TYPE_INT64,
    _F.TYPE_INT32,
    _F.TYPE_BOOL,
    _F.TYPE_MESSAGE,
)
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_PACKAGE = "warmpool.sim.k8s"

#: message → fields (name, number, type, repeated, message type or map value type).
#: A ``("map", value_type)`` entry is a ``map<string, value_type>``.
if TYPE_CHECKING:
    from typing import TypeAlias

    _Type: TypeAlias = descriptor_pb2.FieldDescriptorProto.Type.ValueType
    _Field: TypeAlias = tuple[str, int, _Type | tuple[str, _Type], bool, str]
_MESSAGES: dict[str, list[_Field]] = {
    "TypeMeta": [("apiVersion", 1, _STRING, False, ""), ("kind", 2, _STRING, False, "")],
    "Unknown": [
        ("typeMeta", 1, _MESSAGE, False, "TypeMeta"),
        ("raw", 2, _BYTES, False, ""),
        ("contentEncoding", 3, _STRING, False, ""),
        ("contentType", 4, _STRING, False, ""),
    ],
    "Time": [("seconds", 1, _INT64, False, ""), ("nanos", 2, _INT32, False, "")],
    "OwnerReference": [
        ("kind", 1, _STRING, False, ""),
        ("name", 3, _STRING, False, ""),
        ("uid", 4, _STRING, False, ""),
        ("apiVersion", 5, _STRING, False, ""),
        ("controller", 6, _BOOL, False, ""),
        ("blockOwnerDeletion", 7, _BOOL, False, ""),
    ],
    "ObjectMeta": [
        ("name", 1, _STRING, False, ""),
        ("generateName", 2, _STRING, False, ""),
        ("namespace", 3, _STRING, False, ""),
        ("uid", 5, _STRING, False, ""),
        ("resourceVersion", 6, _STRING, False, ""),
        ("generation", 7, _INT64, False, ""),
        ("creationTimestamp", 8, _MESSAGE, False, "Time"),
        ("labels", 11, ("map", _STRING), False, ""),
        ("annotations", 12, ("map", _STRING), False, ""),
        ("ownerReferences", 13, _MESSAGE, True, "OwnerReference"),
        ("finalizers", 14, _STRING, True, ""),
    ],
    "Secret": [
        ("metadata", 1, _MESSAGE, False, "ObjectMeta"),
        ("data", 2, ("map", _BYTES), False, ""),
        ("type", 3, _STRING, False, ""),
        ("stringData", 4, ("map", _STRING), False, ""),
        ("immutable", 5, _BOOL, False, ""),
    ],
    "ConfigMap": [
        ("metadata", 1, _MESSAGE, False, "ObjectMeta"),
        ("data", 2, ("map", _STRING), False, ""),
        ("binaryData", 3, ("map", _BYTES), False, ""),
        ("immutable", 4, _BOOL, False, ""),
    ],
    "NamespaceSpec": [("finalizers", 1, _STRING, True, "")],
    "Namespace": [
        ("metadata", 1, _MESSAGE, False, "ObjectMeta"),
        ("spec", 2, _MESSAGE, False, "NamespaceSpec"),
    ],
}
#: (apiVersion, kind) the emulated API decodes from protobuf.
KINDS = {("v1", "Secret"), ("v1", "ConfigMap"), ("v1", "Namespace")}


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf object this emulator decodes."""


def is_protobuf(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == PROTOBUF


@functools.cache
def _classes() -> dict[str, Callable[[], message.Message]]:
    proto = descriptor_pb2.FileDescriptorProto(
        name="warmpool/sim/k8s.proto", package=_PACKAGE, syntax="proto2"
    )
    for name, fields in _MESSAGES.items():
        msg = proto.message_type.add(name=name)
        for fname, number, kind, repeated, type_name in fields:
            field = msg.field.add(name=fname, number=number, json_name=fname)
            if isinstance(kind, tuple):  # map<string, V>: a repeated nested entry message
                entry = msg.nested_type.add(name=f"{fname[0].upper()}{fname[1:]}Entry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=_STRING, label=_OPTIONAL)
                entry.field.add(name="value", number=2, type=kind[1], label=_OPTIONAL)
                field.type, field.label = _MESSAGE, _REPEATED
                field.type_name = f".{_PACKAGE}.{name}.{entry.name}"
                continue
            field.type = kind
            field.label = _REPEATED if repeated else _OPTIONAL
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in _MESSAGES
    }


def _parse(name: str, data: bytes) -> message.Message:
    msg = _classes()[name]()
    try:
        msg.ParseFromString(data)
    except message.DecodeError as e:
        raise ProtobufError(f"the body is not a valid {name} message: {e}") from e
    return msg


def decode(body: bytes) -> dict[str, Any]:
    """The object's JSON form (``apiVersion``, ``kind``, ``metadata``, ...)."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic k8s\\0")
    unknown: Any = _parse("Unknown", body[len(MAGIC) :])
    api_version, kind = unknown.typeMeta.apiVersion, unknown.typeMeta.kind
    if (api_version, kind) not in KINDS:
        raise ProtobufError(
            f"{api_version}/{kind} in protobuf is not supported by the emulated API; "
            "send it as JSON (kubectl apply -f, or -o json | kubectl create -f -)"
        )
    if unknown.contentEncoding:
        raise ProtobufError(f"content encoding {unknown.contentEncoding!r} is not supported")
    obj = json_format.MessageToDict(_parse(kind, unknown.raw))
    meta = obj.get("metadata", {})
    for stamp in ("creationTimestamp",):
        if not meta.get(stamp):  # a zero Time is how Go encodes "unset"
            meta.pop(stamp, None)
    if "generation" in meta:  # int64 comes out of json_format as a string
        meta["generation"] = int(meta["generation"])
    return {"apiVersion": api_version, "kind": kind, **obj}
