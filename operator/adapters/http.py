"""The HTTP clients of the Kubernetes and ComfyUI adapters: httpx's API over aiohttp's
connection engine (the ``httpx-aiohttp`` transport, by httpx's maintainer).

httpx's own transport (httpcore over anyio) spends about 2.3 ms of CPU per request on
the 2-core reference machine; the same request through :class:`AiohttpTransport` about
0.8 ms (``bench/jobs.py`` makes three per job). Everything above the transport stays
httpx: requests, responses, streaming, time-outs, auth flows, respx in the unit tests
(``respx.mock(using="httpx")`` mocks whatever transport a client has).

One difference is mended here: httpx-aiohttp maps every ``aiohttp.ClientConnectionError``
(a refused connection, a server that hung up, a failed TLS handshake) to
``httpx.ConnectTimeout``. Only a time-out stays one; a connection that could not be made
becomes ``httpx.ConnectError``, one lost afterwards ``httpx.ReadError`` — the adapters
tell a slow machine from a dead one by these classes.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

#: aiohttp's time-outs (and asyncio's): the only causes that stay ``ConnectTimeout``.
_TIMEOUTS = (aiohttp.ServerTimeoutError, asyncio.TimeoutError)


class Transport(httpx.AsyncBaseTransport):
    """:class:`AiohttpTransport` with the connection errors classified (module docstring)."""

    def __init__(self, *, verify: ssl.SSLContext | bool, limits: httpx.Limits) -> None:
        self._inner = AiohttpTransport(verify=verify, limits=limits, trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if cause is None or isinstance(cause, _TIMEOUTS):
                raise
            if isinstance(cause, aiohttp.ClientConnectorError):
                raise httpx.ConnectError(str(exc), request=request) from cause
            raise httpx.ReadError(str(exc), request=request) from cause

    async def aclose(self) -> None:
        await self._inner.aclose()


def client(
    *,
    verify: ssl.SSLContext | bool = True,
    limits: httpx.Limits | None = None,
    timeout: httpx.Timeout | float = 5.0,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on the aiohttp transport (no proxy: a client that needs
    one is made on httpx's own transport, which speaks to proxies)."""
    transport = Transport(verify=verify, limits=limits or httpx.Limits())
    return httpx.AsyncClient(transport=transport, timeout=timeout, auth=auth)
