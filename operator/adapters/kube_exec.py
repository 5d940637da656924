"""Exec credential plugins (``client.authentication.k8s.io`` v1, v1beta1), as kubectl runs
them: the bearer token a plugin prints is cached until shortly before its
``expirationTimestamp`` or until the server refuses it. lightkube's own exec auth refreshes
on a 401 only and knows v1alpha1/v1beta1, hence this one. Used by
:mod:`warmpool.operator.adapters.kubeconfig`."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncGenerator, Generator
from datetime import UTC, datetime, timedelta
from typing import Final

import httpx
from lightkube.config.models import UserExec

from warmpool.operator import errors

__all__ = ["EXEC_API_VERSIONS", "EXPIRY_SKEW", "ExecCredentialAuth"]

EXEC_API_VERSIONS: Final = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)
EXEC_TIMEOUT: Final = 60.0
EXPIRY_SKEW: Final = timedelta(seconds=30)  # refresh a token this long before it expires


class ExecCredentialAuth(httpx.Auth):
    """Bearer tokens from an exec credential plugin, cached until shortly before their
    ``expirationTimestamp`` (or until a 401). The plugin's output never reaches an error."""

    def __init__(self, spec: UserExec) -> None:
        if spec.apiVersion not in EXEC_API_VERSIONS:
            raise errors.ConfigurationError(
                f"kubeconfig: exec apiVersion {spec.apiVersion!r} is unsupported"
            )
        self._spec = spec
        self._token: str | None = None
        self._expiry: datetime | None = None
        self._lock = asyncio.Lock()
        self._given: str | None = None  # the token last handed to Kopf's login

    def __repr__(self) -> str:
        return f"ExecCredentialAuth(command={self._spec.command!r})"

    @property
    def expiry(self) -> datetime | None:
        return self._expiry

    def _fresh(self) -> bool:
        if self._token is None:
            return False
        return self._expiry is None or datetime.now(UTC) < self._expiry - EXPIRY_SKEW

    async def token(self, *, stale: str | None = None) -> str:
        """The current token; the plugin runs when there is none, when it is about to expire,
        or when ``stale`` (a token the server refused) is still the cached one."""
        async with self._lock:
            if self._fresh() and (stale is None or stale != self._token):
                assert self._token is not None
                return self._token
            self._token, self._expiry = await self._run()
            return self._token

    async def login_token(self) -> str:
        """The token for Kopf's login. Kopf logs in again only when its credentials were
        refused or expired, so the token handed last time is stale by then."""
        self._given = await self.token(stale=self._given)
        return self._given

    async def _run(self) -> tuple[str, datetime | None]:
        spec = self._spec
        env = dict(os.environ)
        env.update((v.name, v.value) for v in spec.env or [])
        info = {"apiVersion": spec.apiVersion, "kind": "ExecCredential"}
        env["KUBERNETES_EXEC_INFO"] = json.dumps({**info, "spec": {"interactive": False}})
        what = f"exec credential plugin {spec.command!r}"
        try:
            proc = await asyncio.create_subprocess_exec(
                spec.command,
                *(spec.args or []),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            async with asyncio.timeout(EXEC_TIMEOUT):
                out, _ = await proc.communicate()
        except (OSError, TimeoutError) as e:
            hint = f" ({spec.installHint.strip()})" if spec.installHint else ""
            reason = type(e).__name__
            raise errors.ConfigurationError(f"{what} could not run: {reason}{hint}") from e
        if proc.returncode != 0:
            raise errors.ConfigurationError(f"{what} exited with {proc.returncode}")
        try:
            doc = json.loads(out)
            status = doc["status"]
            token = str(status["token"])
            expires = status.get("expirationTimestamp")
            expiry = datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None
        except (ValueError, KeyError, TypeError, AttributeError):
            # No detail: the output holds the credential.
            raise errors.ConfigurationError(
                f"{what} printed no ExecCredential with a status.token"
            ) from None
        if expiry is not None and expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
        return token, expiry

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("ExecCredentialAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            await response.aread()
            request.headers["Authorization"] = f"Bearer {await self.token(stale=token)}"
            yield request
