"""Download tokens read from the Secrets a pool's models name: one decoder for every Secret,
errors that name the Secret and key and never carry a value (T2)."""

from __future__ import annotations

import base64
from typing import Any, cast

import pytest

from warmpool.crds.gpupool import SecretKeyRef
from warmpool.operator import errors
from warmpool.operator.adapters import kube, secrets

TOKEN = "hf_SECRETvalue0123456789abcdef"


class Secrets:
    """A KubeClient that knows a few Secrets (only ``get`` is used)."""

    def __init__(self, **data: dict[str, str]) -> None:
        self.data = data

    async def get(self, res: kube.Resource, name: str, namespace: str | None = None) -> Any:
        assert res == kube.SECRETS
        found = self.data.get(name)
        return None if found is None else {"metadata": {"name": name}, "data": found}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def read(client: Secrets, ref: SecretKeyRef) -> dict[str, str]:
    return await secrets.read_model_tokens(
        cast("kube.KubeClient", client), "ns", {"WARMPOOL_MODEL_TOKEN_HF": ref}
    )


async def test_the_token_is_read_and_trimmed() -> None:
    client = Secrets(hf={"token": b64(TOKEN + "\n")})
    assert await read(client, SecretKeyRef(name="hf")) == {"WARMPOOL_MODEL_TOKEN_HF": TOKEN}


@pytest.mark.parametrize(
    ("data", "ref", "message"),
    [
        pytest.param({}, SecretKeyRef(name="gone"), "Secret ns/gone not found", id="no-secret"),
        pytest.param(
            {"hf": {"other": b64(TOKEN)}},
            SecretKeyRef(name="hf"),
            "Secret ns/hf key 'token' is missing, empty or not text",
            id="no-key",
        ),
        pytest.param(
            {"hf": {"token": b64("  ")}},
            SecretKeyRef(name="hf"),
            "Secret ns/hf key 'token' is missing, empty or not text",
            id="blank",
        ),
        pytest.param(
            {"hf": {"token": "not base64!"}},
            SecretKeyRef(name="hf"),
            "Secret ns/hf key 'token' is missing, empty or not text",
            id="not-base64",
        ),
    ],
)
async def test_a_missing_token_names_the_secret_never_a_value(
    data: dict[str, dict[str, str]], ref: SecretKeyRef, message: str
) -> None:
    with pytest.raises(errors.ModelTokenMissingError) as info:
        await read(Secrets(**data), ref)
    assert str(info.value) == message
    assert TOKEN not in str(info.value)
    assert isinstance(info.value, errors.ConfigurationError)
