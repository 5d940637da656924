"""The ComfyUI adapter's HTTP connection pools (one small pool per ComfyUI base URL) and
websocket sessions (one shared socket per ComfyUI server, :mod:`.comfy_session`).

httpcore scans every pooled connection on each request, so one big shared pool costs
CPU in proportion to the fleet; one pool per instance keeps each request's cost flat.

An ``https://`` URL with a pinned certificate gets a client that trusts that certificate
only (:func:`machine_tls.pinned_context`); without a pin, the system's CAs. An
``http://`` URL is refused by the clients made here unless :attr:`ClientPool.allow_http`.
"""

from __future__ import annotations

import ssl

import httpx

from warmpool.operator.adapters import http, machine_tls
from warmpool.operator.adapters.comfy import ComfyClient, ComfyLimits
from warmpool.operator.adapters.comfy_session import ComfySession

_Entry = tuple[httpx.AsyncClient, ssl.SSLContext | None]

#: Seconds an idle connection to a ComfyUI is kept for the next request.
KEEPALIVE = 60.0


class ClientPool:
    """The HTTP clients of every ComfyUI this process talks to, by base URL."""

    def __init__(
        self,
        *,
        max_connections: int = 16,
        max_keepalive: int = 8,
        limits: ComfyLimits | None = None,
    ) -> None:
        #: The byte caps of every client made here (set from the settings at start-up).
        self.limits = limits or ComfyLimits()
        #: ``WARMPOOL_COMFY_ALLOW_PLAIN_HTTP`` (set at start-up): off, http:// is refused.
        self.allow_http = False
        # Idle connections are kept past the Ready probe's interval (30 s), below the 75 s
        # ComfyUI's aiohttp keeps them: a probe reuses its TLS connection, no handshake.
        self._limits = httpx.Limits(max_connections=max_connections,
                                    max_keepalive_connections=max_keepalive,
                                    keepalive_expiry=KEEPALIVE)  # fmt: skip
        self._clients: dict[tuple[str, str], _Entry] = {}
        self._sessions: dict[tuple[str, str, str], ComfySession] = {}

    def _entry(self, url: str, pin: str | None) -> _Entry:
        key = (url, pin or "")
        entry = self._clients.get(key)
        if entry is None:
            tls = machine_tls.pinned_context(pin) if pin and url.startswith("https") else None
            client = http.client(limits=self._limits, verify=tls or True)
            entry = self._clients[key] = (client, tls)
        return entry

    def http_for(self, url: str, pin: str | None = None) -> httpx.AsyncClient:
        """The HTTP client for one ComfyUI base URL (its own small connection pool), trusting
        only the pinned certificate when given."""
        return self._entry(url, pin)[0]

    def client(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float,
        attempts: int = 3,
        pin: str | None = None,
    ) -> ComfyClient:
        """A ComfyUI client over the URL's pool (the websocket verifies the same pin)."""
        http, tls = self._entry(url, pin)
        return ComfyClient(http, url, token, timeout=timeout, attempts=attempts,
                           limits=self.limits, tls=tls, allow_http=self.allow_http)  # fmt: skip

    def session(
        self, url: str, token: str | None, *, timeout: float, pin: str | None = None
    ) -> ComfySession:
        """The one websocket session of a ComfyUI server (made on first use; a session whose
        token was refused is replaced)."""
        key = (url, pin or "", token or "")
        found = self._sessions.get(key)
        if found is None or found.failed:
            client = self.client(url, token, timeout=timeout, pin=pin)
            found = self._sessions[key] = ComfySession(client)
        return found

    async def aclose(self) -> None:
        """Close every session and pool (operator shutdown)."""
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.aclose()
        clients, self._clients = list(self._clients.values()), {}
        for client, _ in clients:
            await client.aclose()
