"""What build is running: ``warmpool_build_info{version, commit}``, exported by both processes.

One definition for the operator and the studio (each imports it through its metrics module;
Prometheus tells them apart by the scrape job). The version is the installed package's; the
commit comes from ``WARMPOOL_COMMIT``, which the image build sets (``docker build
--build-arg WARMPOOL_COMMIT=$(git rev-parse HEAD)``), else ``unknown``.
"""

from __future__ import annotations

import os
from importlib import metadata

from prometheus_client import Gauge

BUILD_INFO = Gauge(
    "warmpool_build_info",
    "Always 1; the labels name the running build: package version and git commit.",
    ["version", "commit"],
)


def build_labels() -> dict[str, str]:
    """The version of the installed package and the commit the image was built from."""
    try:
        version = metadata.version("warmpool")
    except metadata.PackageNotFoundError:  # pragma: no cover - not installed
        version = "unknown"
    return {
        "version": version,
        "commit": os.environ.get("WARMPOOL_COMMIT", "").strip() or "unknown",
    }


BUILD_INFO.labels(**build_labels()).set(1)
