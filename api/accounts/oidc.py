"""The OpenID Connect provider, seen by the studio (a relying party).

Authorization code flow with PKCE (S256), ``state`` and ``nonce``:

1. :meth:`Provider.authorization_url` — the provider's ``authorization_endpoint`` (from its
   discovery document) with a fresh state, nonce and code challenge; built with Authlib's
   OAuth 2 helpers (``prepare_grant_uri``, ``create_s256_code_challenge``).
2. :meth:`Provider.exchange` — the code and the PKCE verifier for tokens at the
   ``token_endpoint`` (``client_secret_basic``, or a public client with PKCE alone).
3. :meth:`Provider.verify` — the ID token checked with joserfc: the signature by a key of
   the provider's JWKS (fetched again once when a token names an unknown key: rotation),
   ``iss`` equal to the issuer, ``aud`` containing the client id (and ``azp`` the client
   when there are several audiences), ``exp`` in the future, ``iat`` present, and ``nonce``
   equal to the one sent. Any failure is an :class:`OidcTokenError` (401), without the token.

Why not Authlib's httpx integration: since Authlib 1.7 it runs on httpx2 and deprecates
httpx (a second HTTP stack here, as lightkube 1.x would be); the protocol helpers and
joserfc (the JOSE library Authlib itself now uses, replacing ``authlib.jose``) do the
security-relevant parts, over the studio's own httpx client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

#: Signature algorithms accepted for ID tokens (never "none", never HMAC with a public key).
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
LEEWAY_SECONDS = 30
DISCOVERY_SECONDS = 3600


class OidcError(Exception):
    """The provider could not be used (unreachable, bad discovery, token endpoint error)."""


class OidcTokenError(OidcError):
    """The ID token was refused; the message names the check, never the token."""


@dataclass(frozen=True)
class Login:
    """A started sign-in: where to send the browser, and what the callback must check."""

    url: str
    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True)
class Tokens:
    id_token: str
    access_token: str | None


class Provider:
    """One provider and the studio's client at it."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        *,
        scopes: str,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.scopes = scopes
        self._http = http
        self._clock = clock
        self._meta: dict[str, Any] | None = None
        self._meta_at = 0.0
        self._keys: KeySet | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------ discovery

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise OidcError(f"the provider did not answer {url}: {type(e).__name__}") from e
        if not isinstance(body, dict):
            raise OidcError(f"the provider's {url} is not a JSON object")
        return body

    async def metadata(self) -> dict[str, Any]:
        async with self._lock:
            if self._meta is None or self._clock() - self._meta_at > DISCOVERY_SECONDS:
                meta = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
                if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
                    raise OidcError("the discovery document names another issuer")
                for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(meta.get(key), str):
                        raise OidcError(f"the discovery document has no {key}")
                self._meta, self._meta_at = meta, self._clock()
            return self._meta

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            meta = await self.metadata()
            try:
                self._keys = KeySet.import_key_set(await self._get_json(meta["jwks_uri"]))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError) as e:
                raise OidcError("the provider's JWKS cannot be read") from e
        return self._keys

    # ------------------------------------------------------------ the flow

    async def authorization_url(self, redirect_uri: str) -> Login:
        meta = await self.metadata()
        state, nonce, verifier = generate_token(43), generate_token(43), generate_token(64)
        url = prepare_grant_uri(
            meta["authorization_endpoint"],
            client_id=self.client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=self.scopes,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return Login(url=url, state=state, nonce=nonce, verifier=verifier)

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> Tokens:
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        url = meta["token_endpoint"]
        try:
            if self._secret is not None:
                auth = httpx.BasicAuth(self.client_id, self._secret)
                response = await self._http.post(url, data=form, auth=auth)
            else:  # a public client: PKCE alone
                response = await self._http.post(url, data={**form, "client_id": self.client_id})
            body = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise OidcError(f"the token endpoint failed: {type(e).__name__}") from e
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise OidcError(
                f"the token endpoint refused the code ({error or response.status_code})"
            )
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the token endpoint gave no ID token (is the openid scope asked?)")
        access = body.get("access_token")
        return Tokens(id_token=id_token, access_token=access if isinstance(access, str) else None)

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, after every check of OpenID Connect Core 3.1.3.7."""
        keys = await self._key_set()
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            except InvalidKeyIdError:
                # Perhaps the provider rotated its keys: fetch them once more.
                keys = await self._key_set(refresh=True)
                token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
        except JoseError as e:
            raise OidcTokenError(f"the ID token's signature is not valid ({e.error})") from e
        except ValueError as e:
            raise OidcTokenError("the ID token is malformed") from e
        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as e:
            raise OidcTokenError(f"the ID token was refused: {e.description or e.error}") from e
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise OidcTokenError("the ID token was refused: azp is not this client")
        return claims

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """Claims from the userinfo endpoint (for providers that keep them out of the ID
        token); empty when it has none."""
        meta = await self.metadata()
        url = meta.get("userinfo_endpoint")
        if not isinstance(url, str):
            return {}
        try:
            response = await self._http.get(
                url, headers={"Authorization": f"Bearer {access_token}"}
            )
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise OidcError(f"the userinfo endpoint failed: {type(e).__name__}") from e
        return body if isinstance(body, dict) else {}

    async def end_session_url(
        self, post_logout: str, *, id_token_hint: str | None = None
    ) -> str | None:
        """RP-initiated logout at the provider, when it offers one (its discovery document
        names an ``end_session_endpoint``); the ID token of the session as the hint."""
        try:
            meta = await self.metadata()
        except OidcError:
            return None
        url = meta.get("end_session_endpoint")
        if not isinstance(url, str):
            return None
        params = {"client_id": self.client_id, "post_logout_redirect_uri": post_logout}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        return str(httpx.URL(url).copy_merge_params(params))
