"""Which artifact a job may load as its reference image: only its owner's own uploads.

Pure. A GenerationJob (or the muse it names) carries ``referenceImage`` as an artifact
key, and anyone who may create a job in a namespace (``kubectl``, a crafted request) could
write any key there: another namespace's or another user's outputs and uploads. The studio
checks keys it is given; the operator checks again before it reads a byte, because the
studio is not the only way in.

The studio stores uploads at ``uploads/<namespace>/<owner id>/<sha256>.<ext>``, where the
owner id is the SHA-256 of the full user name (``api/uploads.py``: no crafted name can
collide with another's). A job may use a key only when it has exactly that shape, in the
job's namespace, with the owner id of the job's ``spec.owner``. Everything else (outputs,
records, thumbnails, another namespace, another owner, a job without an owner) is refused
with the status reason :data:`REFERENCE_NOT_OWNED`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

#: The status reason of a job whose reference image is not one of its owner's uploads.
REFERENCE_NOT_OWNED = "ReferenceNotOwned"

_UPLOAD = re.compile(
    r"uploads/(?P<namespace>[a-z0-9][-a-z0-9]{0,62})/(?P<owner>[0-9a-f]{64})"
    r"/[0-9a-f]{64}\.(?:png|jpg|webp)"
)


@dataclass(frozen=True)
class Refusal:
    """Why a reference key may not be used (the message never repeats the key's owner id)."""

    reason: str
    message: str


def owner_id(owner: str) -> str:
    """The owner id in upload keys: the SHA-256 of the user name (as the studio makes it)."""
    return hashlib.sha256(owner.encode()).hexdigest()


def check_reference(key: str, *, namespace: str, owner: str) -> Refusal | None:
    """None when ``key`` is one of ``owner``'s uploads in ``namespace``, else the refusal."""
    match = _UPLOAD.fullmatch(key)
    if match is None:
        why = "is not an upload (only the job owner's own uploads can be used)"
    elif match["namespace"] != namespace:
        why = f"was uploaded in another namespace, not {namespace!r}"
    elif not owner:
        why = "cannot be checked: the job has no spec.owner"
    elif match["owner"] != owner_id(owner):
        why = "is another user's upload, not the job owner's"
    else:
        return None
    return Refusal(REFERENCE_NOT_OWNED, f"the reference image {why}; it was not loaded")
