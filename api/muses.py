"""Muses: Muse objects made, read, replaced, deleted, exported and imported for a user."""

from __future__ import annotations

import re
import secrets
from typing import Any

from warmpool.api.auth import OWNER_LABEL, User
from warmpool.api.jobs import (
    check_composed,
    check_reference,
    check_text,
    get_owned,
    newest_first,
    owner_of,
)
from warmpool.api.problems import FieldError
from warmpool.api.schemas import MuseExport, MuseExportItem, MuseOut, MuseRequest
from warmpool.api.state import Studio
from warmpool.crds.muse import Muse, MuseSpec
from warmpool.operator import errors
from warmpool.operator.adapters import kube

#: The muse texts that reach prompts, checked one by one (for a precise error), then
#: composed (the template with its placeholders filled) with the negative prompt:
#: "child" in a negative prompt keeps children out, "adult" there is refused.
CHECKED_TEXTS = ("display_name", "style", "personality", "prompt_template")


def slug(text: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50].strip("-")
    return f"{base or 'muse'}-{secrets.token_hex(3)}"


def to_out(obj: dict[str, Any]) -> MuseOut:
    muse = Muse.from_body(obj)
    return MuseOut(
        name=muse.metadata.name,
        owner=muse.spec.owner,
        created=muse.metadata.creation_timestamp,
        spec=muse.spec,
        jobs=muse.status.jobs,
    )


def check(studio: Studio, user: User, req: MuseRequest, prefix: list[str | int]) -> None:
    """The rules beyond the schema: the blocklist on every prompt text, own images."""
    for field in CHECKED_TEXTS:
        alias = MuseSpec.model_fields[field].alias or field
        check_text(studio, [*prefix, alias], str(getattr(req, field)))
    for field, value in req.appearance:
        alias = type(req.appearance).model_fields[field].alias or field
        check_text(studio, [*prefix, "appearance", alias], str(value))
    for i, tag in enumerate(req.tags):
        check_text(studio, [*prefix, "tags", i], tag)
    for field, value in req.traits:
        alias = type(req.traits).model_fields[field].alias or field
        for i, text in enumerate(value if isinstance(value, list) else [value]):
            at = (
                [*prefix, "traits", alias, i]
                if isinstance(value, list)
                else [*prefix, "traits", alias]
            )
            check_text(studio, at, str(text))
    for i, variation in enumerate(req.variations):
        for field in ("outfit", "scenario", "style"):
            check_text(studio, [*prefix, "variations", i, field], getattr(variation, field))
    check_composed(studio, prefix, req, "", "", positive_field="promptTemplate")
    for variation in req.variations:
        check_composed(studio, prefix, req, "", "", positive_field="variations",
                       variation=variation.name)  # fmt: skip
    for i, key in enumerate(req.reference_images):
        check_reference(studio, user, [*prefix, "referenceImages", i], key)


def body_of(user: User, req: MuseRequest, name: str) -> dict[str, Any]:
    spec = req.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"name"})
    spec["owner"] = user.name
    return {"metadata": {"name": name, "labels": {OWNER_LABEL: user.label}}, "spec": spec}


async def create(
    studio: Studio, user: User, req: MuseRequest, prefix: list[str | int] | None = None
) -> MuseOut:
    prefix = prefix or ["body"]
    check(studio, user, req, prefix)
    name = req.name or slug(req.display_name)
    ns = studio.settings.studio_namespace
    try:
        obj = await studio.kube.create(kube.MUSES, body_of(user, req, name), ns)
    except errors.KubeConflictError as e:
        raise FieldError([*prefix, "name"], f"a muse named {name!r} exists", type="exists") from e
    return to_out(obj)


async def replace(studio: Studio, user: User, name: str, req: MuseRequest) -> MuseOut:
    current = await get_owned(studio, user, kube.MUSES, name)
    check(studio, user, req, ["body"])
    owner = owner_of(current)  # an admin editing keeps the owner
    body = body_of(User(owner), req, name)
    body["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
    obj = await studio.kube.replace(kube.MUSES, name, studio.settings.studio_namespace, body)
    return to_out(obj)


async def mine(studio: Studio, user: User, *, everyone: bool = False) -> list[dict[str, Any]]:
    selector = None if (everyone and user.admin) else f"{OWNER_LABEL}={user.label}"
    items = await studio.kube.list(
        kube.MUSES, studio.settings.studio_namespace, label_selector=selector
    )
    return newest_first([o for o in items if user.may_touch(owner_of(o))])


async def export(studio: Studio, user: User) -> MuseExport:
    muses = []
    for obj in await mine(studio, user):
        spec = MuseSpec.model_validate(obj.get("spec") or {})
        data = spec.model_dump(by_alias=True, exclude={"owner"})
        muses.append(
            MuseExportItem(name=obj["metadata"]["name"], spec=MuseRequest.model_validate(data))
        )
    return MuseExport(muses=muses)


async def import_(studio: Studio, user: User, doc: MuseExport) -> list[str]:
    """Create each muse; a name already taken gets a fresh suffix."""
    created = []
    for i, item in enumerate(doc.muses):
        prefix: list[str | int] = ["body", "muses", i, "spec"]
        check(studio, user, item.spec, prefix)
    for item in doc.muses:
        req = item.spec.model_copy(update={"name": item.name})
        ns = studio.settings.studio_namespace
        try:
            obj = await studio.kube.create(kube.MUSES, body_of(user, req, item.name), ns)
        except errors.KubeConflictError:
            fresh = slug(item.name[:50])
            obj = await studio.kube.create(kube.MUSES, body_of(user, req, fresh), ns)
        created.append(str(obj["metadata"]["name"]))
    return created
