"""The ComfyUI adapter's HTTP connection pools: one small pool per ComfyUI base URL.

httpcore scans every pooled connection on each request, so one big shared pool costs
CPU in proportion to the fleet; one pool per instance keeps each request's cost flat.
"""

from __future__ import annotations

import httpx

from warmpool.operator.adapters.comfy import ComfyClient, ComfyLimits


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
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_keepalive
        )
        self._clients: dict[str, httpx.AsyncClient] = {}

    def http_for(self, url: str) -> httpx.AsyncClient:
        """The HTTP client for one ComfyUI base URL (its own small connection pool)."""
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = httpx.AsyncClient(limits=self._limits)
        return client

    def client(
        self, url: str, token: str | None, *, timeout: float, attempts: int = 3
    ) -> ComfyClient:
        """A ComfyUI client over the URL's pool."""
        return ComfyClient(self.http_for(url), url, token, timeout=timeout, attempts=attempts,
                           limits=self.limits)  # fmt: skip

    async def aclose(self) -> None:
        """Close every pool (operator shutdown)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
