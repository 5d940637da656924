"""localstripe (a stateful Stripe fake from PyPI) as its own process, started exactly as
``warmpool-sim dev --payments`` starts it (``warmpool-sim stripe`` on an inherited socket):
each one has its own store, whatever else runs in the test process."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

JS_PATH = "/js.stripe.com/v3/"


@contextlib.contextmanager
def running_localstripe() -> Iterator[str]:
    """The base URL of a fresh localstripe on 127.0.0.1 (stopped afterwards)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    binary = Path(sys.executable).parent / "warmpool-sim"
    with sock:
        proc = subprocess.Popen(
            [str(binary), "stripe", "--fd", str(sock.fileno())],
            pass_fds=(sock.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while not _answers(base):
            assert proc.poll() is None, "localstripe exited"
            assert time.monotonic() < deadline, "localstripe did not answer within 30 s"
            time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(base: str) -> bool:
    try:
        return httpx.get(base + JS_PATH, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def register_webhook(base: str, url: str, secret: str) -> None:
    """Point localstripe's signed webhooks at ``url``."""
    r = httpx.post(f"{base}/_config/webhooks/studio", data={"url": url, "secret": secret})
    r.raise_for_status()
