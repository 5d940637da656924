"""Who is calling: the three auth modes of the studio (``WARMPOOL_STUDIO_AUTH``).

``token`` (the default)
    Bearer tokens kept in a Kubernetes Secret (``WARMPOOL_STUDIO_TOKEN_SECRET`` in the
    studio namespace). The Secret's ``data`` maps **user name → token** (base64 as
    always in a Secret; ``stringData`` works when writing it)::

        kubectl create secret generic warmpool-studio-tokens \\
            --from-literal=ada="$(openssl rand -hex 32)" --from-literal=bob=...

    A request carries ``Authorization: Bearer <token>``, or the ``warmpool_session``
    cookie the page gets from ``POST /api/v1/session``: a signed session value, never
    the token (:mod:`warmpool.api.sessions`). Every stored token is compared with
    :func:`hmac.compare_digest`, all of them every time, so timing tells nothing.
    Tokens shorter than ``WARMPOOL_STUDIO_MIN_TOKEN_LENGTH`` (or of very few distinct
    characters) are refused: at start-up the studio does not start, on a later reload
    they are ignored. Failed sign-ins (session or bearer) are limited per client and
    per user name (429). The Secret is cached for ``WARMPOOL_STUDIO_TOKEN_CACHE_SECONDS``.
``proxy``
    An authenticating proxy such as oauth2-proxy names the user, believed only when the
    connection comes from one of ``WARMPOOL_STUDIO_PROXY_CIDRS``. Exactly one header
    family is accepted (``WARMPOOL_STUDIO_PROXY_HEADERS``: ``X-Forwarded`` →
    ``X-Forwarded-User``/``-Groups``, or ``X-Auth-Request``); a request carrying an
    identity header of the other family is refused (403), since a proxy passes through
    the headers it does not set itself. With ``WARMPOOL_STUDIO_PROXY_JWKS_URL`` the
    proxy's signed ID token is required (oauth2-proxy ``--pass-authorization-header``
    or ``--pass-access-token`` with an ID token) and verified with PyJWT: signature by
    the issuer's JWKS, ``iss``, ``aud``, ``exp``; the user and groups come from its claims.
``oidc``
    Accounts through an OpenID Connect provider (:mod:`warmpool.api.accounts`): the
    ``warmpool_session`` cookie is a server-side session in the records database, looked
    up through :attr:`Authenticator.accounts` (set by the app's lifespan).
``none``
    Dev stack only, chosen explicitly: every caller is the one local user (an admin).

Admins (``WARMPOOL_STUDIO_ADMIN_GROUP`` members, or ``WARMPOOL_STUDIO_ADMINS``) see all.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import jwt
from fastapi import HTTPException, Request, status

from warmpool.api.limits import FailureLimiter
from warmpool.api.peers import Peers
from warmpool.api.sessions import Sessions
from warmpool.api.settings import StudioSettings
from warmpool.operator import errors
from warmpool.operator.adapters import kube

logger = logging.getLogger(__name__)

SESSION_COOKIE = "warmpool_session"
OWNER_LABEL = "warmpool.dev/owner"
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
#: The identity headers oauth2-proxy sets, per family (the other family is refused).
_IDENTITY_SUFFIXES = ("User", "Groups", "Email", "Preferred-Username", "Access-Token")
FAMILIES = ("X-Forwarded", "X-Auth-Request")
JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
JWT_LEEWAY_SECONDS = 30
MIN_DISTINCT_CHARS = 8


@dataclass(frozen=True)
class User:
    """The caller."""

    name: str
    admin: bool = False

    @property
    def label(self) -> str:
        """The owner label value (names that are not valid label values are hashed)."""
        return owner_label(self.name)

    @property
    def owner_id(self) -> str:
        """A collision-free stand-in for the name in keys: always its SHA-256, so no
        crafted name can equal another user's (unlike :attr:`label`, which keeps short
        names as they are)."""
        return owner_id(self.name)

    def may_touch(self, owner: str) -> bool:
        return self.admin or hmac.compare_digest(owner.encode(), self.name.encode())


def owner_label(name: str) -> str:
    """A valid label value standing for a user name (e.g. an e-mail address). A pre-filter
    for list calls only: ownership is always checked on ``spec.owner``."""
    if _LABEL_VALUE.match(name) and len(name) <= 63:
        return name
    return "u-" + hashlib.sha256(name.encode()).hexdigest()[:40]


def owner_id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def weak_token(token: bytes, min_length: int) -> bool:
    """Too short, or too few distinct characters (``aaaa…``, ``1212…``) to be random."""
    return len(token) < min_length or len(set(token)) < MIN_DISTINCT_CHARS


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _too_many(wait: int) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail="too many failed sign-ins; try again later",
        headers={"Retry-After": str(wait)},
    )


def _forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)


class SessionStore(Protocol):
    """Server-side sessions of oidc mode (:class:`warmpool.api.accounts.service.Accounts`)."""

    async def user_of(self, request: Request) -> User | None: ...

    async def end(self, request: Request) -> None: ...


class Authenticator:
    """Resolves a request to a :class:`User`, or raises 401/403/429."""

    def __init__(
        self,
        settings: StudioSettings,
        kube_client: kube.KubeClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._kube = kube_client
        self._clock = clock
        self._tokens: dict[str, bytes] = {}
        self._loaded_at: float | None = None
        self.peers = Peers(settings.studio_proxy_cidrs)
        self.sessions = Sessions(settings.studio_session_seconds)
        self.failures = FailureLimiter(settings.studio_signin_failures_per_minute)
        self._admins = frozenset(settings.studio_admins)
        self.accounts: SessionStore | None = None  # oidc mode: set by the lifespan
        self._jwks = (
            jwt.PyJWKClient(settings.studio_proxy_jwks_url, cache_keys=True, lifespan=300)
            if settings.studio_proxy_jwks_url
            else None
        )

    async def start(self) -> None:
        """Token mode: refuse to start when the Secret holds a weak token (names only in
        the error, never the tokens). A Secret not there yet is fine (read per request)."""
        if self.settings.studio_auth != "token":
            return
        try:
            secret = await self._read_secret()
        except HTTPException:
            logger.warning("the token Secret cannot be read yet; it is read on each sign-in")
            return
        weak = sorted(n for n, t in self._decode(secret).items() if self._weak(t))
        if weak:
            raise RuntimeError(
                f"weak tokens in Secret {self.settings.studio_token_secret!r} for "
                f"{', '.join(weak)}: use at least {self.settings.studio_min_token_length} "
                "random characters (openssl rand -hex 32)"
            )

    async def authenticate(self, request: Request) -> User:
        mode = self.settings.studio_auth
        if mode == "none":
            return User(self.settings.studio_local_user, admin=True)
        if mode == "token":
            return await self._by_token(request)
        if mode == "oidc":
            return await self._by_account(request)
        return await self._by_proxy(request)

    async def _by_account(self, request: Request) -> User:
        if self.accounts is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="starting")
        user = await self.accounts.user_of(request)
        if user is None:
            raise _unauthorized("sign in (or sign up) first")
        return user

    # ------------------------------------------------------------ token

    @staticmethod
    def bearer(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None

    def _client_key(self, request: Request) -> str:
        return "client:" + self.peers.client(request)

    async def _by_token(self, request: Request) -> User:
        client = self._client_key(request)
        presented = self.bearer(request)
        cookie = request.cookies.get(SESSION_COOKIE)
        if not presented and not cookie:
            raise _unauthorized("a bearer token is required")
        if wait := await self.failures.blocked(client):
            raise _too_many(wait)
        if presented:
            name = await self.user_for_token(presented)
            if name is None:
                await self.failures.failed(client)
                raise _unauthorized("the token is not valid")
        else:
            # A session value is a 256-bit MAC: not guessable, so no failure is counted
            # (a page with an expired cookie must not lock its user out).
            name = await self.sessions.user_of(cookie or "", await self._load_tokens())
            if name is None:
                raise _unauthorized("the session has ended; sign in again")
        return User(name, admin=name in self._admins)

    async def sign_in(self, request: Request, token: str, name: str | None) -> tuple[str, str]:
        """The token's user and a new session value (``name``, when given, must own it)."""
        keys = [self._client_key(request)] + ([f"name:{name}"] if name else [])
        if wait := await self.failures.blocked(*keys):
            raise _too_many(wait)
        found = await self.user_for_token(token)
        if found is None or (name is not None and found != name):
            await self.failures.failed(*keys)
            raise _unauthorized("the token is not valid")
        if wait := await self.failures.blocked(f"name:{found}"):
            raise _too_many(wait)  # someone has been guessing this user's token
        return found, self.sessions.issue(found, (await self._load_tokens())[found])

    async def sign_out(self, request: Request) -> None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie and self.settings.studio_auth == "token":
            await self.sessions.revoke(cookie, await self._load_tokens())
        elif self.settings.studio_auth == "oidc" and self.accounts is not None:
            await self.accounts.end(request)

    async def user_for_token(self, presented: str) -> str | None:
        """The user owning ``presented``; every token is compared, in constant time."""
        tokens = await self._load_tokens()
        given = presented.encode()
        found: str | None = None
        for name, token in tokens.items():
            if hmac.compare_digest(given, token) and token:
                found = name
        return found

    def _weak(self, token: bytes) -> bool:
        return weak_token(token, self.settings.studio_min_token_length)

    async def _read_secret(self) -> Mapping[str, object]:
        try:
            secret = await self._kube.get(
                kube.SECRETS, self.settings.studio_token_secret, self.settings.studio_namespace
            )
        except errors.KubeError as e:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, detail="token store unavailable"
            ) from e
        return secret or {}

    @staticmethod
    def _decode(secret: Mapping[str, object]) -> dict[str, bytes]:
        tokens: dict[str, bytes] = {}
        data = secret.get("data") or {}
        string_data = secret.get("stringData") or {}
        assert isinstance(data, dict) and isinstance(string_data, dict)
        for name, value in data.items():
            try:
                tokens[str(name)] = base64.b64decode(str(value), validate=True).strip()
            except (binascii.Error, ValueError):
                continue
        for name, value in string_data.items():
            tokens[str(name)] = str(value).strip().encode()
        return tokens

    async def _load_tokens(self) -> Mapping[str, bytes]:
        now = self._clock()
        fresh = (
            self._loaded_at is not None
            and now - self._loaded_at < self.settings.studio_token_cache_seconds
        )
        if fresh:
            return self._tokens
        tokens = self._decode(await self._read_secret())
        for name in sorted(n for n, t in tokens.items() if self._weak(t)):
            logger.warning("ignoring the weak token of %s in the token Secret", name)
            del tokens[name]
        self._tokens, self._loaded_at = tokens, now
        return tokens

    # ------------------------------------------------------------ proxy

    @staticmethod
    def _family_headers(family: str) -> list[str]:
        return [f"{family}-{suffix}" for suffix in _IDENTITY_SUFFIXES]

    async def _by_proxy(self, request: Request) -> User:
        family = self.settings.studio_proxy_headers
        others = [h for f in FAMILIES if f != family for h in self._family_headers(f)]
        carried = [h for h in (*self._family_headers(family), *others) if h in request.headers]
        if not self.peers.trusted(request):
            # A user header from anywhere else is forged: refuse loudly, never fall back.
            if carried:
                raise _forbidden("identity headers are accepted only from the proxy")
            raise _unauthorized("sign in through the authenticating proxy")
        if forged := [h for h in others if h in request.headers]:
            raise _forbidden(
                f"{forged[0]} is not accepted: the proxy names users with {family}-User"
            )
        header_name = request.headers.get(f"{family}-User", "").strip()
        if self._jwks is not None:
            name, groups = await self._from_jwt(request)
            if header_name and header_name != name:
                raise _forbidden(f"{family}-User does not match the proxy's signed token")
        else:
            name = header_name
            groups_header = request.headers.get(f"{family}-Groups", "")
            groups = {g.strip() for g in groups_header.split(",") if g.strip()}
        if not name:
            raise _unauthorized("the proxy did not name a user")
        admin = self.settings.studio_admin_group in groups or name in self._admins
        return User(name, admin=admin)

    async def _from_jwt(self, request: Request) -> tuple[str, set[str]]:
        # The ID token (--pass-authorization-header) first: an access token in
        # <family>-Access-Token may be opaque for some providers.
        token = self.bearer(request) or request.headers.get(
            f"{self.settings.studio_proxy_headers}-Access-Token"
        )
        if not token:
            raise _unauthorized("the proxy's signed token is missing")
        s = self.settings
        try:
            claims = await asyncio.to_thread(self._verify_jwt, token)
        except jwt.PyJWKClientConnectionError as e:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, detail="the issuer's keys are unavailable"
            ) from e
        except jwt.PyJWTError as e:
            raise _unauthorized("the proxy's token is not valid") from e
        name = claims.get(s.studio_proxy_jwt_user_claim)
        raw = claims.get(s.studio_proxy_jwt_groups_claim) or []
        listed = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
        groups = {str(g).strip() for g in listed if str(g).strip()}
        return (str(name).strip() if isinstance(name, str) else ""), groups

    def _verify_jwt(self, token: str) -> dict[str, object]:
        assert self._jwks is not None
        s = self.settings
        key = self._jwks.get_signing_key_from_jwt(token)
        claims: dict[str, object] = jwt.decode(
            token,
            key,
            algorithms=JWT_ALGORITHMS,
            audience=s.studio_proxy_jwt_audience,
            issuer=s.studio_proxy_jwt_issuer,
            leeway=JWT_LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "aud"]},
        )
        return claims
