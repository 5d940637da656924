"""The operator's pool series: one per namespace and pool, gone with the pool."""

from __future__ import annotations

from prometheus_client import REGISTRY

from warmpool.operator import metrics


def value(name: str, namespace: str, pool: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": namespace, "pool": pool, **labels})


def test_two_pools_of_one_name_in_two_namespaces_are_two_series() -> None:
    metrics.POOL_READY.labels("team-a", "same").set(2)
    metrics.POOL_READY.labels("team-b", "same").set(0)
    assert value("warmpool_pool_ready_replicas", "team-a", "same") == 2
    assert value("warmpool_pool_ready_replicas", "team-b", "same") == 0


def test_a_budget_taken_out_of_the_spec_is_no_longer_exported() -> None:
    """Regression: the gauge kept the last budget, and the dashboards and the near-budget
    alerts compared the spend against a budget the pool no longer had."""
    metrics.set_optional(metrics.BUDGET_DAILY, 60.0, "team-a", "budgeted")
    assert value("warmpool_budget_dollars_per_day", "team-a", "budgeted") == 60
    metrics.set_optional(metrics.BUDGET_DAILY, None, "team-a", "budgeted")
    assert value("warmpool_budget_dollars_per_day", "team-a", "budgeted") is None
    metrics.set_optional(metrics.BUDGET_DAILY, None, "team-a", "never")  # nothing to remove


def test_a_deleted_pool_leaves_no_state_behind_and_the_other_namespace_keeps_its_own() -> None:
    for ns in ("team-a", "team-b"):
        metrics.POOL_DEGRADED.labels(ns, "gone").set(1)
        metrics.INSTANCES.labels(ns, "gone", "Ready").set(1)
        metrics.JOBS.labels(ns, "gone", "Queued").set(3)
        metrics.RENTALS.labels(ns, "gone", "Warm").inc()
    metrics.forget_pool("team-a", "gone")
    assert value("warmpool_pool_degraded", "team-a", "gone") is None
    assert value("warmpool_instances", "team-a", "gone", phase="Ready") is None
    assert value("warmpool_jobs", "team-a", "gone", phase="Queued") is None
    assert value("warmpool_pool_degraded", "team-b", "gone") == 1
    assert value("warmpool_jobs", "team-b", "gone", phase="Queued") == 3
    # History stays: the rentals counter of the deleted pool is still there.
    assert value("warmpool_rentals_total", "team-a", "gone", reason="Warm") == 1


def test_every_pool_gauge_is_forgotten_with_the_pool() -> None:
    gauges = [m for m in vars(metrics).values() if isinstance(m, metrics.Gauge)]
    pool_gauges = {g for g in gauges if "pool" in g._labelnames}
    assert pool_gauges == set(metrics.POOL_STATE)
