"""T1: a job's reference image is one of its owner's own uploads, or it is refused.

The story: the operator read ``spec.referenceImage`` straight from the artifact store, so a
job created with kubectl (or by a studio bug) could name another namespace's outputs or
another user's upload and have it sent to a rented machine. Now only
``uploads/<job namespace>/<sha256 of spec.owner>/<sha256>.<ext>`` is loaded.
"""

from __future__ import annotations

import hashlib

import pytest

from warmpool.operator.decisions import references
from warmpool.operator.decisions.references import REFERENCE_NOT_OWNED

ALICE = hashlib.sha256(b"alice@example.com").hexdigest()
BOB = hashlib.sha256(b"bob@example.com").hexdigest()
SHA = "ab" * 32


def upload(namespace: str = "studio", owner: str = ALICE, ext: str = "png") -> str:
    return f"uploads/{namespace}/{owner}/{SHA}.{ext}"


@pytest.mark.parametrize(
    ("key", "owner", "refused"),
    [
        pytest.param(upload(), "alice@example.com", None, id="own-upload"),
        pytest.param(upload(ext="jpg"), "alice@example.com", None, id="own-jpeg"),
        pytest.param(upload(ext="webp"), "alice@example.com", None, id="own-webp"),
        pytest.param(upload(owner=BOB), "alice@example.com", "another user", id="other-user"),
        pytest.param(upload(namespace="team-b"), "alice@example.com", "another namespace",
                     id="other-namespace"),
        pytest.param(upload(), "", "no spec.owner", id="no-owner"),
        pytest.param(upload(), "Alice@example.com", "another user", id="owner-case-differs"),
        pytest.param("outputs/studio/job-1/0.png", "alice@example.com", "not an upload",
                     id="someones-output"),
        pytest.param("records/studio/job-1/0.png.json", "alice@example.com", "not an upload",
                     id="a-record"),
        pytest.param(f"uploads/studio/alice@example.com/{SHA}.png", "alice@example.com",
                     "not an upload", id="old-label-shaped-key"),
        pytest.param(upload() + "/../../outputs/x.png", "alice@example.com", "not an upload",
                     id="traversal"),
        pytest.param(upload(ext="html"), "alice@example.com", "not an upload", id="html"),
        pytest.param(upload(owner=ALICE[:-1] + "G"), "alice@example.com", "not an upload",
                     id="owner-not-hex"),
    ],
)  # fmt: skip
def test_only_the_owners_own_uploads_in_the_namespace(
    key: str, owner: str, refused: str | None
) -> None:
    refusal = references.check_reference(key, namespace="studio", owner=owner)
    if refused is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert refusal.reason == REFERENCE_NOT_OWNED
        assert refused in refusal.message
        assert ALICE not in refusal.message and BOB not in refusal.message


def test_the_owner_id_is_the_studios() -> None:
    """The studio's ``api.auth.owner_id`` and this one must agree, or nobody's upload passes."""
    from warmpool.api.auth import owner_id

    assert references.owner_id("alice@example.com") == owner_id("alice@example.com") == ALICE
