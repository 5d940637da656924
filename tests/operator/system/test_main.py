"""The operator process: liveness and metrics endpoints, JSON logs."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import httpx
import pytest
from waiting import eventually

from warmpool.operator import main
from warmpool.operator.settings import OperatorSettings
from warmpool.sim.cluster import RunningCluster


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_liveness_and_metrics_endpoints(cluster: RunningCluster, run_operator: Any) -> None:
    port = free_port()
    cluster.create({"apiVersion": "warmpool.dev/v1alpha1", "kind": "GpuPool",
                    "metadata": {"name": "seen", "namespace": "default"},
                    "spec": {"replicas": 0}})  # fmt: skip
    async with (
        run_operator(health_port=port, health=True),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        health = await eventually(lambda: _get(http, "/healthz"), what="/healthz")
        assert health.json() == {"status": "ok"}

        async def exported() -> httpx.Response | None:
            response = await http.get("/metrics")
            ok = 'warmpool_pool_desired_replicas{namespace="default",pool="seen"}' in response.text
            return response if ok else None

        metrics = await eventually(exported, what="pool metrics exported")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "warmpool_vastai_requests_total" in metrics.text


async def _get(http: httpx.AsyncClient, path: str) -> httpx.Response | None:
    try:
        response = await http.get(path)
    except httpx.TransportError:
        return None
    return response if response.status_code == 200 else None


def test_json_logs_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        main.configure_logging(OperatorSettings(log_format="json"))
        logging.getLogger("warmpool.test").info("renting %s", "offer 7")
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    record = json.loads(line)
    assert record["message"] == "renting offer 7"
    assert record["levelname"] == "INFO"
    assert record["name"] == "warmpool.test"


def test_json_logs_of_kopf_per_object_loggers(capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: Kopf's per-object loggers (every handler's ``logger``) put their
    OperatorSettings into each record's extras; the JSON formatter tried to serialise it and
    printed a traceback instead of the line. The settings are left out, the object stays."""
    import kopf

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    metadata = {"name": "sdxl", "namespace": "default", "uid": "u1"}
    body = kopf.Body(
        {"apiVersion": "warmpool.dev/v1alpha1", "kind": "GpuPool", "metadata": metadata}
    )
    try:
        main.configure_logging(OperatorSettings(log_format="json"))
        kopf.LocalObjectLogger(body=body, settings=kopf.OperatorSettings()).info("warm: 1 rented")
        err = capsys.readouterr().err
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    assert "Traceback" not in err, err
    record = json.loads(err.strip().splitlines()[-1])
    assert record["message"] == "warm: 1 rented"
    assert record["k8s_ref"]["namespace"] == "default" and record["k8s_ref"]["name"] == "sdxl"
    assert "settings" not in record and "k8s_skip" not in record
