"""Who is calling: the three auth modes of the studio (``WARMPOOL_STUDIO_AUTH``).

``none``
    Dev stack only: every caller is the one local user (an admin).
``token``
    Bearer tokens kept in a Kubernetes Secret (``WARMPOOL_STUDIO_TOKEN_SECRET`` in the
    studio namespace). The Secret's ``data`` maps **user name → token** (base64 as
    always in a Secret; ``stringData`` works when writing it)::

        kubectl create secret generic warmpool-studio-tokens \\
            --from-literal=ada="$(openssl rand -hex 32)" --from-literal=bob=...

    A request carries ``Authorization: Bearer <token>``, or the ``warmpool_session``
    cookie the page sets through ``POST /api/v1/session`` (so ``<img>`` and
    ``EventSource`` work). Every stored token is compared with
    :func:`hmac.compare_digest`, all of them every time, so timing tells nothing.
    The Secret is cached for ``WARMPOOL_STUDIO_TOKEN_CACHE_SECONDS`` (rotation works).
``proxy``
    The user name comes from a header set by an authenticating proxy such as
    oauth2-proxy (``X-Auth-Request-User``/``X-Forwarded-User``) and is believed only
    when the connection comes from one of ``WARMPOOL_STUDIO_PROXY_CIDRS``; groups come
    from ``X-Auth-Request-Groups`` (comma-separated).

Admins (``WARMPOOL_STUDIO_ADMIN_GROUP`` members, or ``WARMPOOL_STUDIO_ADMINS``) see all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from warmpool.api.settings import StudioSettings
from warmpool.operator import errors
from warmpool.operator.adapters import kube

SESSION_COOKIE = "warmpool_session"
OWNER_LABEL = "warmpool.dev/owner"
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


@dataclass(frozen=True)
class User:
    """The caller."""

    name: str
    admin: bool = False

    @property
    def label(self) -> str:
        """The owner label value (names that are not valid label values are hashed)."""
        return owner_label(self.name)

    def may_touch(self, owner: str) -> bool:
        return self.admin or hmac.compare_digest(owner.encode(), self.name.encode())


def owner_label(name: str) -> str:
    """A valid label value standing for a user name (e.g. an e-mail address)."""
    if _LABEL_VALUE.match(name) and len(name) <= 63:
        return name
    return "u-" + hashlib.sha256(name.encode()).hexdigest()[:40]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


class Authenticator:
    """Resolves a request to a :class:`User`, or raises 401/403."""

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
        self._networks = [
            ipaddress.ip_network(c, strict=False) for c in settings.studio_proxy_cidrs
        ]
        self._admins = frozenset(settings.studio_admins)

    async def authenticate(self, request: Request) -> User:
        mode = self.settings.studio_auth
        if mode == "none":
            return User(self.settings.studio_local_user, admin=True)
        if mode == "token":
            return await self._by_token(request)
        return self._by_proxy(request)

    # ------------------------------------------------------------ token

    @staticmethod
    def presented_token(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return request.cookies.get(SESSION_COOKIE) or None

    async def _by_token(self, request: Request) -> User:
        presented = self.presented_token(request)
        if not presented:
            raise _unauthorized("a bearer token is required")
        name = await self.user_for_token(presented)
        if name is None:
            raise _unauthorized("the token is not valid")
        return User(name, admin=name in self._admins)

    async def user_for_token(self, presented: str) -> str | None:
        """The user owning ``presented``; every token is compared, in constant time."""
        tokens = await self._load_tokens()
        given = presented.encode()
        found: str | None = None
        for name, token in tokens.items():
            if hmac.compare_digest(given, token) and token:
                found = name
        return found

    async def _load_tokens(self) -> Mapping[str, bytes]:
        now = self._clock()
        fresh = (
            self._loaded_at is not None
            and now - self._loaded_at < self.settings.studio_token_cache_seconds
        )
        if fresh:
            return self._tokens
        try:
            secret = await self._kube.get(
                kube.SECRETS, self.settings.studio_token_secret, self.settings.studio_namespace
            )
        except errors.KubeError as e:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, detail="token store unavailable"
            ) from e
        tokens: dict[str, bytes] = {}
        for name, value in ((secret or {}).get("data") or {}).items():
            try:
                tokens[str(name)] = base64.b64decode(str(value), validate=True).strip()
            except (binascii.Error, ValueError):
                continue
        for name, value in ((secret or {}).get("stringData") or {}).items():
            tokens[str(name)] = str(value).strip().encode()
        self._tokens, self._loaded_at = tokens, now
        return tokens

    # ------------------------------------------------------------ proxy

    def _from_proxy(self, request: Request) -> bool:
        host = request.client.host if request.client else ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self._networks)

    def _by_proxy(self, request: Request) -> User:
        names = [
            request.headers[h]
            for h in self.settings.studio_proxy_user_headers
            if h in request.headers
        ]
        if not self._from_proxy(request):
            # A user header from anywhere else is forged: refuse loudly, never fall back.
            if names:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    detail="identity headers are accepted only from the proxy",
                )
            raise _unauthorized("sign in through the authenticating proxy")
        name = next((n.strip() for n in names if n.strip()), "")
        if not name:
            raise _unauthorized("the proxy did not name a user")
        groups_header = request.headers.get(self.settings.studio_proxy_groups_header, "")
        groups = {g.strip() for g in groups_header.split(",") if g.strip()}
        admin = self.settings.studio_admin_group in groups or name in self._admins
        return User(name, admin=admin)
