"""Sign-in sessions of token mode: a signed session value in the cookie, never the token.

The cookie is ``<user>.<expires>.<id>.<mac>`` (user base64url, expiry in Unix seconds,
a random id) with ``mac = HMAC-SHA256(key, "<user>.<expires>.<id>")`` where the key is
derived from the user's current token (``HMAC(token, "warmpool-session")``). So:

- the cookie is useless as a bearer token and does not reveal the token;
- rotating a user's token in the Secret ends all their sessions (on every replica);
- it expires (``WARMPOOL_STUDIO_SESSION_SECONDS``), and sign-out revokes its id.

Revoked ids are kept until their expiry in a :class:`Revocations` store: in this process
with one replica (:class:`MemoryRevocations`), in the records database with several
(``records.shared.DbRevocations``, PostgreSQL), so a signed-out cookie is refused by
every replica.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

_KEY_LABEL = b"warmpool-session"


def _key(token: bytes) -> bytes:
    return hmac.new(token, _KEY_LABEL, hashlib.sha256).digest()


def _mac(token: bytes, payload: str) -> str:
    return hmac.new(_key(token), payload.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Parsed:
    user: str
    expires: int
    sid: str
    payload: str
    mac: str


def _parse(value: str) -> _Parsed | None:
    parts = value.split(".")
    if len(parts) != 4:
        return None
    user_b64, expires, sid, mac = parts
    try:
        padded = user_b64 + "=" * (-len(user_b64) % 4)
        user = base64.urlsafe_b64decode(padded.encode()).decode()
        when = int(expires)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return _Parsed(user, when, sid, f"{user_b64}.{expires}.{sid}", mac)


class Revocations(Protocol):
    """Revoked session ids, each until its expiry (Unix seconds)."""

    async def revoke(self, sid: str, expires: int, now: float) -> None: ...

    async def is_revoked(self, sid: str) -> bool: ...


class MemoryRevocations:
    """:class:`Revocations` in this process (one replica)."""

    def __init__(self) -> None:
        self._revoked: dict[str, int] = {}  # id → expiry

    async def revoke(self, sid: str, expires: int, now: float) -> None:
        for old in [s for s, until in self._revoked.items() if until <= now]:
            del self._revoked[old]
        self._revoked[sid] = expires

    async def is_revoked(self, sid: str) -> bool:
        return sid in self._revoked


class Sessions:
    """Issues, checks and revokes session values."""

    def __init__(
        self,
        lifetime: int,
        revocations: Revocations | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lifetime = lifetime
        self.revocations: Revocations = revocations or MemoryRevocations()
        self._clock = clock

    def issue(self, user: str, token: bytes) -> str:
        user_b64 = base64.urlsafe_b64encode(user.encode()).decode().rstrip("=")
        expires = int(self._clock()) + self.lifetime
        payload = f"{user_b64}.{expires}.{secrets.token_hex(16)}"
        return f"{payload}.{_mac(token, payload)}"

    def _valid(self, value: str, tokens: Mapping[str, bytes]) -> _Parsed | None:
        """The parsed value when well-formed, unexpired and signed by its user's token."""
        parsed = _parse(value)
        if parsed is None or parsed.expires <= self._clock():
            return None
        token = tokens.get(parsed.user)
        if not token or not hmac.compare_digest(_mac(token, parsed.payload), parsed.mac):
            return None
        return parsed

    async def user_of(self, value: str, tokens: Mapping[str, bytes]) -> str | None:
        """The user a valid, unexpired, unrevoked session value belongs to."""
        parsed = self._valid(value, tokens)
        if parsed is None or await self.revocations.is_revoked(parsed.sid):
            return None
        return parsed.user

    async def revoke(self, value: str, tokens: Mapping[str, bytes]) -> None:
        """Revoke a valid session (forged values are not kept: no store to fill)."""
        parsed = self._valid(value, tokens)
        if parsed is not None:
            await self.revocations.revoke(parsed.sid, parsed.expires, self._clock())
