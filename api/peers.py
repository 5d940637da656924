"""What the trusted proxies say about a request: the client's address and the outside
scheme and host.

``X-Forwarded-For``/``-Proto``/``-Host`` are believed only when the connection comes
from one of ``WARMPOOL_STUDIO_PROXY_CIDRS`` (the ingress or the authenticating proxy);
from anywhere else they are ignored, so a client cannot claim an address or https.
``X-Forwarded-For`` is read from the right: the first address that is not a trusted
proxy is the client (the left part is whatever the client sent).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Peers:
    """The trusted proxies and what they tell about a request."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks: list[Network] = [ipaddress.ip_network(c, strict=False) for c in cidrs]

    def _trusted_address(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip())
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    def trusted(self, conn: HTTPConnection) -> bool:
        """The connection comes from a trusted proxy."""
        return self._trusted_address(conn.client.host if conn.client else "")

    def client(self, conn: HTTPConnection) -> str:
        """The client's address (for per-client limits)."""
        peer = conn.client.host if conn.client else ""
        if not self.trusted(conn):
            return peer
        hops = [h.strip() for h in conn.headers.get("x-forwarded-for", "").split(",")]
        for hop in reversed([h for h in hops if h]):
            if not self._trusted_address(hop):
                return hop
        return peer

    def scheme(self, conn: HTTPConnection) -> str:
        """``https`` or ``http`` as the browser sees it."""
        forwarded = conn.headers.get("x-forwarded-proto", "")
        if forwarded and self.trusted(conn):
            return forwarded.split(",")[0].strip().lower()
        return conn.url.scheme

    def host(self, conn: HTTPConnection) -> str:
        """The host (and port) as the browser sees it."""
        forwarded = conn.headers.get("x-forwarded-host", "")
        if forwarded and self.trusted(conn):
            return forwarded.split(",")[0].strip().lower()
        return conn.headers.get("host", "").lower()
