"""Debian's Chromium for the browser tests, driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
from pathlib import Path

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
