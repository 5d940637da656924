"""Debian's Chromium for the browser tests, driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
#: Flags that work in this sandbox (root, no GPU, no network beyond loopback).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Screenshots of the browser tests (git-ignored).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
MISSING = not os.access(CHROMIUM, os.X_OK)
WHY_MISSING = f"{CHROMIUM} is missing (make test installs it)"


def wait_until(page: Any, expression: str, timeout: float = 20.0) -> None:
    """Poll ``expression`` in the page until it is true, with a deadline.

    Not ``page.wait_for_function``: it compiles its predicate with eval inside the page,
    which the studio's Content-Security-Policy forbids (no 'unsafe-eval');
    ``page.evaluate`` goes through DevTools and is not affected.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)
