"""T2: the pinned channel: only the instance's own certificate is trusted; no plain HTTP.

Against a real TLS server on a loopback port (the ComfyUI simulator serving a pair), since
respx cannot show a handshake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import respx

from warmpool.operator import errors
from warmpool.operator.adapters import comfy, machine_tls
from warmpool.operator.adapters.comfy_clients import ClientPool
from warmpool.sim.clock import ScaledClock
from warmpool.sim.comfyui import start_comfyui

TOKEN = "tls-token-SECRET-0123456789"
MINE = machine_tls.new_identity("mine")
THEIRS = machine_tls.new_identity("theirs")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Any]:
    (tmp_path / "c").write_text(MINE.cert_pem)
    (tmp_path / "k").write_text(MINE.key_pem)
    sim = await start_comfyui(token=TOKEN, clock=ScaledClock(50.0), tls_cert=str(tmp_path / "c"),
                              tls_key=str(tmp_path / "k"))  # fmt: skip
    try:
        yield sim
    finally:
        await sim.stop()


async def test_the_pinned_certificate_is_trusted(server: Any) -> None:
    pool = ClientPool()
    try:
        client = pool.client(server.url, TOKEN, timeout=5.0, pin=MINE.cert_pem)
        stats = await client.system_stats()
        assert stats["devices"]
        assert server.requests["GET /system_stats"] == 1
    finally:
        await pool.aclose()


async def test_another_certificate_is_refused_before_any_request(server: Any) -> None:
    pool = ClientPool()
    try:
        client = pool.client(server.url, TOKEN, timeout=5.0, pin=THEIRS.cert_pem, attempts=1)
        with pytest.raises(errors.ComfyInsecureChannelError, match="not verified"):
            await client.system_stats()
        result = await comfy.probe(pool.http_for(server.url, THEIRS.cert_pem), server.url, TOKEN,
                                   deadline=5.0)  # fmt: skip
        assert result.reason is comfy.ProbeReason.INSECURE and result.attempts == 1
        assert not server.requests  # the token never reached it
    finally:
        await pool.aclose()


async def test_plain_http_is_refused_unless_allowed() -> None:
    with respx.mock(using="httpx", assert_all_called=False) as mock:
        route = mock.get("http://203.0.113.9:8188/system_stats").respond(json={"devices": []})
        pool = ClientPool()
        try:
            refused = pool.client("http://203.0.113.9:8188", TOKEN, timeout=5.0)
            with pytest.raises(errors.ComfyInsecureChannelError, match="plain HTTP refused"):
                await refused.system_stats()
            with pytest.raises(errors.ComfyInsecureChannelError):
                refused.connect("cid")  # the websocket too
            assert route.call_count == 0
            pool.allow_http = True  # WARMPOOL_COMFY_ALLOW_PLAIN_HTTP
            allowed = pool.client("http://203.0.113.9:8188", TOKEN, timeout=5.0)
            assert await allowed.system_stats() == {"devices": []}
        finally:
            await pool.aclose()


def test_the_context_trusts_nothing_but_the_pin() -> None:
    context = machine_tls.pinned_context(MINE.cert_pem)
    assert len(context.get_ca_certs()) == 1  # no system or Vast.ai CA
    assert context.verify_mode.name == "CERT_REQUIRED"
