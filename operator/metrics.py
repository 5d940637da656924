"""Prometheus metrics of the operator (prefix ``warmpool_``).

Each area appends its own clearly marked section. Label values are bounded:
route templates, status codes and reasons, never ids, keys or tokens.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# ---------------------------------------------------------------- Vast.ai

VASTAI_REQUESTS = Counter(
    "warmpool_vastai_requests_total",
    "Vast.ai API requests by endpoint (method and route template) and status code "
    "(or 'timeout' / 'transport' when no answer came).",
    ["endpoint", "code"],
)
VASTAI_REQUEST_SECONDS = Histogram(
    "warmpool_vastai_request_seconds",
    "Latency of one Vast.ai API request attempt, seconds.",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)

# ---------------------------------------------------------------- end Vast.ai
