"""Prometheus metrics of the operator (prefix ``warmpool_``).

Each area appends its own clearly marked section. Label values are bounded:
route templates, status codes and reasons, never ids, keys or tokens.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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

# ---------------------------------------------------------------- pools and instances

INSTANCES = Gauge(
    "warmpool_instances",
    "GpuInstances by pool and phase.",
    ["pool", "phase"],
)
POOL_DESIRED = Gauge("warmpool_pool_desired_replicas", "spec.replicas of the pool.", ["pool"])
POOL_MAX = Gauge("warmpool_pool_max_replicas", "Ceiling of demand-driven scale-up.", ["pool"])
POOL_READY = Gauge("warmpool_pool_ready_replicas", "Ready instances of the pool.", ["pool"])
POOL_DEGRADED = Gauge(
    "warmpool_pool_degraded", "1 while the pool's Degraded condition is True.", ["pool"]
)
POOL_PAUSED = Gauge("warmpool_pool_paused", "1 while the pool is paused.", ["pool"])
RENTALS = Counter(
    "warmpool_rentals_total",
    "Rentals started by pool and reason (Warm, Demand, Hedge, Replacement).",
    ["pool", "reason"],
)
RENTAL_FAILURES = Counter(
    "warmpool_rental_failures_total",
    "Rental attempts that failed before Ready, by pool and reason.",
    ["pool", "reason"],
)
TERMINATIONS = Counter(
    "warmpool_terminations_total",
    "Instances terminated by pool and reason.",
    ["pool", "reason"],
)
RENT_TO_READY = Histogram(
    "warmpool_rent_to_ready_seconds",
    "Seconds from rental to Ready.",
    ["pool"],
    buckets=(30, 60, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 3600),
)
READY_PHASE_SECONDS = Histogram(
    "warmpool_ready_phase_seconds",
    "Seconds spent in each step towards Ready (step: running, answering, models, canary).",
    ["pool", "step"],
    buckets=(1, 5, 15, 30, 60, 120, 240, 480, 900, 1800, 3600),
)
PRICE_PER_HOUR = Gauge(
    "warmpool_price_per_hour_dollars", "Sum of $/hour of the pool's rentals.", ["pool"]
)
SPEND = Counter(
    "warmpool_spend_dollars_total", "Cumulative dollars spent on the pool's rentals.", ["pool"]
)
SPEND_TODAY = Gauge("warmpool_spend_today_dollars", "Dollars spent this UTC day.", ["pool"])
BUDGET_HOURLY = Gauge(
    "warmpool_budget_hourly_dollars", "maxHourlySpend of the pool (absent: none).", ["pool"]
)
BUDGET_DAILY = Gauge(
    "warmpool_budget_daily_dollars", "maxDailySpend of the pool (absent: none).", ["pool"]
)
BUDGET_EXCEEDED = Gauge(
    "warmpool_budget_exceeded", "1 while a budget blocks rentals of the pool.", ["pool"]
)
ORPHANS_DESTROYED = Counter(
    "warmpool_orphans_destroyed_total",
    "Rentals with warmpool's label and no GpuInstance, destroyed.",
)

# ---------------------------------------------------------------- jobs

JOBS = Gauge("warmpool_jobs", "GenerationJobs by pool and phase.", ["pool", "phase"])
JOB_QUEUE_WAIT = Histogram(
    "warmpool_job_queue_wait_seconds",
    "Seconds from a job's creation to ComfyUI accepting it.",
    ["pool"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200),
)
JOB_RUN = Histogram(
    "warmpool_job_run_seconds",
    "Seconds from ComfyUI accepting a job to its outputs being stored.",
    ["pool"],
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200),
)
JOB_FAILURES = Counter(
    "warmpool_job_failures_total",
    "Job failures (incl. retried attempts) by reason.",
    ["pool", "reason"],
)
JOBS_FINISHED = Counter(
    "warmpool_jobs_finished_total", "Jobs that reached a terminal phase.", ["pool", "phase"]
)
OUTPUT_BYTES = Counter("warmpool_output_bytes_total", "Bytes of stored outputs.", ["pool"])
OUTPUT_COST = Histogram(
    "warmpool_output_cost_dollars",
    "Cost of one output: dollars per image, or per second of video (kind).",
    ["pool", "gpu", "kind"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)

# ---------------------------------------------------------------- end pools and jobs

# ---------------------------------------------------------------- ComfyUI

COMFY_PROBE_FAILURES = Counter(
    "warmpool_comfy_probe_failures_total",
    "Failed ComfyUI readiness probe attempts by reason (refused, timed_out, http_error, "
    "not_json, no_device, model_missing, auth).",
    ["reason"],
)

# ---------------------------------------------------------------- end ComfyUI

# ---------------------------------------------------------------- operator

ERRORS_CONTINUED = Counter(
    "warmpool_operator_errors_continued_total",
    "Failures the operator logged and went on from (a write lost and redone later, a TTL "
    "delete refused, a runner that failed and could not record it), by where.",
    ["where"],
)

# ---------------------------------------------------------------- end operator
