"""ID token verification (:meth:`Provider.verify`) over httpx, against a provider served by
``httpx.MockTransport``: its discovery document and JWKS, and tokens signed here with
joserfc. Each refusal names the check that failed."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from warmpool.api.accounts.oidc import OidcError, OidcTokenError, Provider

ISSUER = "https://id.example.test"
CLIENT = "warmpool-studio"
NONCE = "n-0123456789"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
OTHER = RSAKey.generate_key(2048, parameters={"kid": "k2"}, private=True)


class Fake:
    """The provider's two documents; ``keys`` may change (rotation)."""

    def __init__(self) -> None:
        self.keys = [KEY]
        self.jwks_fetches = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
            })  # fmt: skip
        if request.url.path == "/jwks":
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})
        return httpx.Response(404)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER, "aud": CLIENT, "sub": "ada", "iat": now, "exp": now + 300,
        "nonce": NONCE, "email": "ada@example.test",
    }  # fmt: skip
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(body: dict[str, Any], key: RSAKey = KEY, alg: str = "RS256") -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, body, key)


@pytest.fixture
async def fake() -> Fake:
    return Fake()


@pytest.fixture
async def provider(fake: Fake) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield Provider(ISSUER, CLIENT, None, scopes="openid", http=http)


async def test_a_valid_token_gives_its_claims(provider: Provider) -> None:
    got = await provider.verify(signed(claims()), NONCE)
    assert got["sub"] == "ada" and got["email"] == "ada@example.test"


@pytest.mark.parametrize(
    ("body", "nonce", "named"),
    [
        pytest.param(claims(aud="another-client"), NONCE, "aud", id="wrong-audience"),
        pytest.param(claims(aud=["another-client", "third"]), NONCE, "aud", id="not-in-audiences"),
        pytest.param(claims(aud=[CLIENT, "third"]), NONCE, "azp", id="several-audiences-no-azp"),
        pytest.param(
            claims(exp=int(time.time()) - 120, iat=int(time.time()) - 600),
            NONCE,
            "expired",
            id="expired",
        ),
        pytest.param(claims(), "another-nonce", "nonce", id="bad-nonce"),
        pytest.param(claims(nonce=None), NONCE, "nonce", id="no-nonce"),
        pytest.param(claims(iss="https://evil.example.test"), NONCE, "iss", id="wrong-issuer"),
        pytest.param(claims(exp=None), NONCE, "exp", id="no-expiry"),
        pytest.param(claims(sub=None), NONCE, "sub", id="no-subject"),
    ],
)
async def test_claims_failures_are_refused(
    provider: Provider, body: dict[str, Any], nonce: str, named: str
) -> None:
    with pytest.raises(OidcTokenError) as refused:
        await provider.verify(signed(body), nonce)
    assert named in str(refused.value).lower()
    assert "eyJ" not in str(refused.value)  # never the token itself


async def test_a_signature_by_another_key_is_refused(provider: Provider, fake: Fake) -> None:
    forged = signed(claims(), OTHER)
    with pytest.raises(OidcTokenError, match="signature"):
        await provider.verify(forged, NONCE)
    assert fake.jwks_fetches == 2  # the keys were fetched again once (rotation?), no more


async def test_a_tampered_payload_is_refused(provider: Provider) -> None:
    header, _, sig = signed(claims()).split(".")
    other = signed(claims(sub="admin")).split(".")[1]
    with pytest.raises(OidcTokenError, match="signature"):
        await provider.verify(f"{header}.{other}.{sig}", NONCE)


async def test_unsigned_and_hmac_tokens_are_refused(provider: Provider) -> None:
    import base64
    import json

    def b64(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    unsigned = f"{b64({'alg': 'none'})}.{b64(claims())}."
    with pytest.raises(OidcTokenError):
        await provider.verify(unsigned, NONCE)
    with pytest.raises(OidcTokenError):
        await provider.verify("not.a.token", NONCE)


async def test_rotated_keys_are_fetched_again(provider: Provider, fake: Fake) -> None:
    await provider.verify(signed(claims()), NONCE)
    fake.keys = [KEY, OTHER]  # the provider adds a key and signs with it
    got = await provider.verify(signed(claims(sub="bob"), OTHER), NONCE)
    assert got["sub"] == "bob" and fake.jwks_fetches == 2


async def test_a_discovery_document_of_another_issuer_is_refused() -> None:
    def lying(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "issuer": "https://evil.example.test", "authorization_endpoint": "x",
            "token_endpoint": "y", "jwks_uri": "z",
        })  # fmt: skip

    async with httpx.AsyncClient(transport=httpx.MockTransport(lying)) as http:
        provider = Provider(ISSUER, CLIENT, None, scopes="openid", http=http)
        with pytest.raises(OidcError, match="another issuer"):
            await provider.authorization_url("https://studio.example.test/auth/callback")


async def test_the_authorization_url_carries_pkce_state_and_nonce(provider: Provider) -> None:
    import base64
    import hashlib

    login = await provider.authorization_url("https://studio.example.test/auth/callback")
    q = httpx.URL(login.url).params
    assert q["response_type"] == "code" and q["client_id"] == CLIENT
    assert q["state"] == login.state and q["nonce"] == login.nonce
    assert q["code_challenge_method"] == "S256"
    digest = hashlib.sha256(login.verifier.encode()).digest()
    assert q["code_challenge"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert login.verifier not in login.url
