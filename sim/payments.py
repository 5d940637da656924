"""The dev stack's Stripe: localstripe (a stateful Stripe fake from PyPI, not written here),
served by ``warmpool-sim stripe`` and started by ``warmpool-sim dev --payments``.

localstripe answers the Stripe API (PaymentIntents, PaymentMethods, tokens, ...) with any
``sk_…`` key, serves a fake Stripe.js at ``/js.stripe.com/v3/`` (a Card Element of plain
inputs, ``createToken`` and ``confirmCardPayment``; no Payment Element), and sends signed
webhooks to the endpoints registered at ``POST /_config/webhooks/<id>`` (``url``,
``secret``). Its store lives in this process only: localstripe's pickling of it to
``/tmp/localstripe.pickle`` (shared by every localstripe on the machine) is switched off.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import warnings
from typing import Any

#: The fake Stripe.js, relative to the server's address.
STRIPE_JS_PATH = "/js.stripe.com/v3/"


def application() -> Any:
    """localstripe's aiohttp application, with its store kept in memory only."""
    with warnings.catch_warnings():  # its routes are plain functions (deprecated in aiohttp)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from localstripe import resources, server
        except ImportError as e:
            raise SystemExit(
                "localstripe is not installed: pip install 'warmpool[demo]' (make demo does)"
            ) from e

    resources.Store.dump_to_disk = lambda self: None
    return server.app


async def serve(host: str, port: int, *, fd: int | None = None) -> None:
    """Serve localstripe until cancelled: on ``fd`` (an inherited listening socket) when
    given, else on ``host:port``."""
    from aiohttp import web

    runner = web.AppRunner(application(), access_log=None)
    await runner.setup()
    site: web.BaseSite
    if fd is not None:
        site = web.SockSite(runner, socket.socket(fileno=fd))
    else:
        site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
