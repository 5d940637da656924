"""Prometheus metrics of the operator (prefix ``warmpool_``).

Each area appends its own clearly marked section. Label values are bounded:
route templates, status codes and reasons, never ids, keys or tokens.

Conventions (Prometheus naming): a name ends in its unit (``_seconds``, ``_bytes``,
``_dollars``, ``_dollars_per_hour``; counters then ``_total``). Every pool-scoped series
carries ``namespace`` and ``pool`` (in that order, the first two label values at every call
site), so two pools of one name in two namespaces are two series. The ServiceMonitor sets
``honorLabels`` so that Prometheus keeps this ``namespace`` (the pool's) instead of renaming
it ``exported_namespace`` next to the scrape target's own.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from warmpool.operator import build

#: The labels of every pool-scoped series.
POOL = ["namespace", "pool"]

# ---------------------------------------------------------------- build

BUILD_INFO = build.BUILD_INFO  # warmpool_build_info{version, commit}, shared with the studio

# ---------------------------------------------------------------- end build

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
    [*POOL, "phase"],
)
POOL_DESIRED = Gauge("warmpool_pool_desired_replicas", "spec.replicas of the pool.", POOL)
POOL_MAX = Gauge("warmpool_pool_max_replicas", "Ceiling of demand-driven scale-up.", POOL)
POOL_READY = Gauge("warmpool_pool_ready_replicas", "Ready instances of the pool.", POOL)
POOL_DEGRADED = Gauge(
    "warmpool_pool_degraded", "1 while the pool's Degraded condition is True.", POOL
)
POOL_PAUSED = Gauge("warmpool_pool_paused", "1 while the pool is paused.", POOL)
RENTALS = Counter(
    "warmpool_rentals_total",
    "Rentals started by pool and reason (Warm, Demand, Hedge, Replacement).",
    [*POOL, "reason"],
)
RENTAL_FAILURES = Counter(
    "warmpool_rental_failures_total",
    "Rental attempts that failed before Ready, by pool and reason.",
    [*POOL, "reason"],
)
TERMINATIONS = Counter(
    "warmpool_terminations_total",
    "Instances terminated by pool and reason.",
    [*POOL, "reason"],
)
RENT_TO_READY = Histogram(
    "warmpool_rent_to_ready_seconds",
    "Seconds from rental to Ready.",
    POOL,
    buckets=(30, 60, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 3600),
)
READY_PHASE_SECONDS = Histogram(
    "warmpool_ready_phase_seconds",
    "Seconds spent in each step towards Ready (step: running, answering, models, canary).",
    [*POOL, "step"],
    buckets=(1, 5, 15, 30, 60, 120, 240, 480, 900, 1800, 3600),
)
PRICE_PER_HOUR = Gauge(
    "warmpool_price_dollars_per_hour", "Sum of the hourly prices of the pool's rentals.", POOL
)
SPEND = Counter(
    "warmpool_spend_dollars_total", "Cumulative dollars spent on the pool's rentals.", POOL
)
SPEND_TODAY = Gauge("warmpool_spend_today_dollars", "Dollars spent this UTC day.", POOL)
BUDGET_HOURLY = Gauge(
    "warmpool_budget_dollars_per_hour",
    "spec.budget.maxHourlySpend of the pool (absent: no hourly budget).",
    POOL,
)
BUDGET_DAILY = Gauge(
    "warmpool_budget_dollars_per_day",
    "spec.budget.maxDailySpend of the pool (absent: no daily budget).",
    POOL,
)
BUDGET_EXCEEDED = Gauge(
    "warmpool_budget_exceeded", "1 while a budget blocks rentals of the pool.", POOL
)
BUDGET_CUTS = Counter(
    "warmpool_budget_cuts_total",
    "Instances released (action=release) or drained (action=drain) because a daily cap was "
    "reached (cap: DailyCap, the pool's; OperatorDailyCap, the operator-wide one).",
    [*POOL, "cap", "action"],
)
OPERATOR_SPEND_TODAY = Gauge(
    "warmpool_operator_spend_today_dollars",
    "Dollars every served pool spent this UTC day (counted for the operator-wide cap and "
    "the balance check).",
)
OPERATOR_BUDGET_DAILY = Gauge(
    "warmpool_operator_budget_dollars_per_day",
    "The operator-wide daily cap (absent: none).",
)
OPERATOR_BUDGET_EXCEEDED = Gauge(
    "warmpool_operator_budget_exceeded",
    "1 while every served pool together reached the operator-wide daily cap.",
)
OPERATOR_ACTIVE = Gauge(
    "warmpool_operator_active",
    "1 while this replica works, 0 while it stands by for a peer (Kopf peering).",
)
OPERATOR_ACTIVE.set(1)
VASTAI_CREDIT = Gauge(
    "warmpool_vastai_credit_dollars",
    "Credit left on the Vast.ai account (GET /users/current/), at the last balance check.",
)
BALANCE_DRIFT = Gauge(
    "warmpool_vastai_balance_drift_dollars",
    "Over the reconciliation window: the account's credit drop minus the spend the operator "
    "counted (positive: the account paid more than counted).",
)
BALANCE_DRIFT_THRESHOLD = Gauge(
    "warmpool_vastai_balance_drift_threshold_dollars",
    "WARMPOOL_BALANCE_DRIFT_THRESHOLD_USD: drift beyond it either way is an alert.",
)
ORPHANS_DESTROYED = Counter(
    "warmpool_orphans_destroyed_total",
    "Rentals with warmpool's label and no GpuInstance, destroyed.",
)

# ---------------------------------------------------------------- jobs

JOBS = Gauge("warmpool_jobs", "GenerationJobs by pool and phase.", [*POOL, "phase"])
JOB_QUEUE_WAIT = Histogram(
    "warmpool_job_queue_wait_seconds",
    "Seconds from a job's creation to ComfyUI accepting it.",
    POOL,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200),
)
JOB_RUN = Histogram(
    "warmpool_job_run_seconds",
    "Seconds from ComfyUI accepting a job to its outputs being stored.",
    POOL,
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200),
)
JOB_FAILURES = Counter(
    "warmpool_job_failures_total",
    "Job failures (incl. retried attempts) by reason.",
    [*POOL, "reason"],
)
JOBS_FINISHED = Counter(
    "warmpool_jobs_finished_total", "Jobs that reached a terminal phase.", [*POOL, "phase"]
)
OUTPUT_BYTES = Counter("warmpool_output_bytes_total", "Bytes of stored outputs.", POOL)
OUTPUT_COST = Histogram(
    "warmpool_output_cost_dollars",
    "Cost of one output: dollars per image, or per second of video (kind).",
    [*POOL, "gpu", "kind"],
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

# ---------------------------------------------------------------- pool lifecycle

#: The gauges that describe a pool's current state: gone with the pool.
POOL_STATE: tuple[Gauge, ...] = (
    INSTANCES,
    POOL_DESIRED,
    POOL_MAX,
    POOL_READY,
    POOL_DEGRADED,
    POOL_PAUSED,
    PRICE_PER_HOUR,
    SPEND_TODAY,
    BUDGET_HOURLY,
    BUDGET_DAILY,
    BUDGET_EXCEEDED,
    JOBS,
)


def set_optional(gauge: Gauge, value: float | None, namespace: str, pool: str) -> None:
    """Set the pool's series of ``gauge``, or remove it when there is no value (a budget
    taken out of the spec must not keep its last figure on the dashboards and alerts)."""
    if value is None:
        gauge.remove_by_labels({"namespace": namespace, "pool": pool})
    else:
        gauge.labels(namespace, pool).set(value)


def forget_pool(namespace: str, pool: str) -> None:
    """Drop a deleted pool's state gauges, so that its last Degraded or BudgetExceeded does
    not keep an alert firing. Counters and histograms stay: they are history, and rates of
    a series that stops being exported end by themselves."""
    for gauge in POOL_STATE:
        gauge.remove_by_labels({"namespace": namespace, "pool": pool})


# ---------------------------------------------------------------- end pool lifecycle

# ---------------------------------------------------------------- operator

ERRORS_CONTINUED = Counter(
    "warmpool_operator_errors_continued_total",
    "Failures the operator logged and went on from (a write lost and redone later, a TTL "
    "delete refused, a runner that failed and could not record it), by where.",
    ["where"],
)

# ---------------------------------------------------------------- end operator

# ---------------------------------------------------------------- cold tier

COLD_INSTANCES = Gauge(
    "warmpool_cold_instances",
    "Instances of the pool's cold tier by phase (Stopped: disk kept, storage billed; "
    "Resuming: started again, not Ready yet).",
    [*POOL, "phase"],
)
STORAGE_PER_HOUR = Gauge(
    "warmpool_storage_dollars_per_hour",
    "Storage $/hour of the pool's stopped instances (storage_cost x disk / 720).",
    POOL,
)
COLD_TRANSITIONS = Counter(
    "warmpool_cold_transitions_total",
    "Stops and starts of the cold tier by action (stop, start) and reason.",
    [*POOL, "action", "reason"],
)
RESUME_SECONDS = Histogram(
    "warmpool_resume_seconds",
    "Seconds from starting a stopped instance to Ready again.",
    POOL,
    buckets=(5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600),
)
RESUME_FAILURES = Counter(
    "warmpool_resume_failures_total",
    "Starts of stopped instances given up, by reason (GpuTaken, ResumeTimeout, "
    "RentalVanished, StatusMessageFailure, ...).",
    [*POOL, "reason"],
)
COLD_OLDEST_STOPPED = Gauge(
    "warmpool_cold_oldest_stopped_seconds",
    "Seconds the pool's longest-stopped instance has been stopped (0: none stopped).",
    POOL,
)
COLD_MAX_AGE = Gauge(
    "warmpool_cold_max_age_seconds",
    "The pool's spec.cold.maxAge in seconds: a stopped instance is destroyed after it "
    "(0: no cold tier).",
    POOL,
)
COLD_STATE = (COLD_INSTANCES, STORAGE_PER_HOUR, COLD_OLDEST_STOPPED, COLD_MAX_AGE)
POOL_STATE += COLD_STATE  # gone with the pool too

# ---------------------------------------------------------------- end cold tier
