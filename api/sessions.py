"""Sign-in sessions of token mode: a signed session value in the cookie, never the token.

The cookie is ``<user>.<expires>.<id>.<mac>`` (user base64url, expiry in Unix seconds,
a random id) with ``mac = HMAC-SHA256(key, "<user>.<expires>.<id>")`` where the key is
derived from the user's current token (``HMAC(token, "warmpool-session")``). So:

- the cookie is useless as a bearer token and does not reveal the token;
- rotating a user's token in the Secret ends all their sessions (on every replica);
- it expires (``WARMPOOL_STUDIO_SESSION_SECONDS``), and sign-out revokes its id.

Revoked ids are kept in memory until their expiry, per replica: with several studio
replicas a signed-out cookie stays valid on the others until it expires or the token is
rotated (the chart runs one replica by default; say so in the README).
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


class Sessions:
    """Issues, checks and revokes session values."""

    def __init__(self, lifetime: int, *, clock: Callable[[], float] = time.time) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._revoked: dict[str, int] = {}  # id → expiry

    def issue(self, user: str, token: bytes) -> str:
        user_b64 = base64.urlsafe_b64encode(user.encode()).decode().rstrip("=")
        expires = int(self._clock()) + self.lifetime
        payload = f"{user_b64}.{expires}.{secrets.token_hex(16)}"
        return f"{payload}.{_mac(token, payload)}"

    def user_of(self, value: str, tokens: Mapping[str, bytes]) -> str | None:
        """The user a valid, unexpired, unrevoked session value belongs to."""
        parsed = _parse(value)
        if parsed is None or parsed.expires <= self._clock() or parsed.sid in self._revoked:
            return None
        token = tokens.get(parsed.user)
        if not token or not hmac.compare_digest(_mac(token, parsed.payload), parsed.mac):
            return None
        return parsed.user

    def revoke(self, value: str, tokens: Mapping[str, bytes]) -> None:
        """Revoke a valid session (forged values are not kept: no memory to fill)."""
        now = self._clock()
        for sid in [s for s, until in self._revoked.items() if until <= now]:
            del self._revoked[sid]
        parsed = _parse(value)
        if parsed is not None and self.user_of(value, tokens) is not None:
            self._revoked[parsed.sid] = parsed.expires
