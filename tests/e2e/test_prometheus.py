"""Every dashboard query, evaluated by a real Prometheus scraping the real processes.

``warmpool-sim dev`` runs the emulated Kubernetes API, the Vast.ai simulator (a ComfyUI
simulator behind every rental), ``warmpool-operator`` and ``warmpool-studio``, as ``make demo``
does. Debian's ``prometheus`` scrapes both processes every second with a generated config (in a
temporary directory, on a free loopback port) shaped like the chart's ServiceMonitors (job =
Service name, ``honor_labels``, the target's ``namespace``) and loads the chart's rules as
``helm template`` renders them. The test runs a few generations through the studio, then asks
Prometheus's HTTP API (``/api/v1/query``) for every query of every panel of every dashboard:
each returns data, or is listed in :data:`NEEDS_AN_EVENT` with the event the test does not
cause. It also checks that every rule evaluates without error, that no alert fires on the
healthy stack, that both processes report ``warmpool_build_info``, and that both log JSON.

Skips (with the reason) only when ``prometheus`` is absent and the test does not run as root.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus import RELEASE, binary, write_rule_file
from waiting import eventually

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "charts" / "warmpool" / "dashboards"
OPERATOR_JOB, STUDIO_JOB = f"{RELEASE}-warmpool-operator", f"{RELEASE}-warmpool-studio"
TARGET_NAMESPACE = "warmpool"  # the release namespace: the scrape target's own label
#: Grafana's variables as Grafana fills them for a 1 s scrape interval and the sample pool.
GRAFANA = {
    "$__rate_interval": "20s",
    "$__interval": "5s",
    "$__range": "15m",
    "$namespace": "default",
    "$pool": "sdxl",
}
#: Queries (dashboard, panel, the series they read) that only an event this test does not
#: cause gives data, with that event.
NEEDS_AN_EVENT: dict[tuple[str, str, str], str] = {
    ("fleet.json", "Rental failures by reason", "warmpool_rental_failures_total"):
        "a rental that fails before Ready",
    ("fleet.json", "ComfyUI probe failures and orphans destroyed",
     "warmpool_comfy_probe_failures_total"): "a failed ComfyUI readiness probe",
    ("jobs.json", "Failures by reason", "warmpool_job_failures_total"): "a failed job attempt",
    ("vastai.json", "429 in range", 'code="429"'): "Vast.ai throttling (HTTP 429)",
    ("vastai.json", "429 by endpoint", 'code="429"'): "Vast.ai throttling (HTTP 429)",
    ("vastai.json", "Errors by endpoint and code", 'code=~"5..|timeout|transport"'):
        "a Vast.ai 5xx, time-out or transport error",
    ("fleet.json", "Starts, stops and given-up starts per hour", "warmpool_cold_transitions_total"):
        "a stop or a start of the cold tier (the sample pool has no cold tier)",
    ("fleet.json", "Starts, stops and given-up starts per hour", "warmpool_resume_failures_total"):
        "a start of a stopped instance given up (the sample pool has no cold tier)",
    ("fleet.json", "Start → Ready (p50, p90) and oldest stopped vs maxAge",
     "histogram_quantile(0.5"): "a stopped instance started again",
    ("fleet.json", "Start → Ready (p50, p90) and oldest stopped vs maxAge",
     "histogram_quantile(0.9"): "a stopped instance started again",
    ("fleet.json", "Start → Ready (p50, p90) and oldest stopped vs maxAge",
     "warmpool_cold_max_age_seconds"): "a pool with a cold tier (maxAge shown only then)",
}  # fmt: skip


def needs_an_event(board: str, title: str, expr: str) -> str | None:
    for (b, t, reads), reason in NEEDS_AN_EVENT.items():
        if (b, t) == (board, title) and reads in expr:
            return reason
    return None


GENERATIONS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL with Grafana's variables filled in)."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA.items():
                    expr = expr.replace(variable, value)
                assert "$" not in expr, (path.name, panel["title"], expr)
                found.append((path.name, panel["title"], expr))
    return found


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard, label, series selector) of each ``label_values(selector, label)`` variable."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] == "query":
                match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
                assert match, variable["definition"]
                selector = match.group(1).replace('"$namespace"', '"default"')
                found.append((path.name, match.group(2), selector))
    return found


def scrape_config(workdir: Path, *, operator: str, studio: str, rules: Path) -> Path:
    def job(name: str, target: str) -> dict[str, Any]:
        return {
            "job_name": name,
            "honor_labels": True,  # as the ServiceMonitor's honorLabels
            "metrics_path": "/metrics",
            "static_configs": [{"targets": [target], "labels": {"namespace": TARGET_NAMESPACE}}],
        }

    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [job(OPERATOR_JOB, operator), job(STUDIO_JOB, studio)],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Process:
    """A child process whose output is collected line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def line_with(self, text: str) -> str | None:
        return next((ln for ln in self.lines if text in ln), None)

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines[-n:])

    async def stop(self, sig: int = signal.SIGINT, timeout: float = 40) -> int:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout=timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            code = await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.reader, timeout=10)
        return code


async def spawn(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> Process:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, start_new_session=True,
    )  # fmt: skip
    return Process(proc)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=10)

    async def query(self, expr: str) -> list[dict[str, Any]]:
        answer = await self.http.get("/api/v1/query", params={"query": expr})
        body = answer.json()
        assert answer.status_code == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def ready(self) -> bool:
        """``/-/ready`` answers 200 (connection refused while Prometheus starts)."""
        try:
            return (await self.http.get("/-/ready")).status_code == 200
        except httpx.TransportError:
            return False

    async def get(self, path: str, **params: Any) -> Any:
        answer = await self.http.get(path, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]


async def run_generations(studio: str) -> list[str]:
    async with httpx.AsyncClient(base_url=studio, timeout=15) as http:
        names = []
        for i in range(GENERATIONS):
            made = await http.post(
                "/api/v1/generations",
                json={
                    "pool": "sdxl",
                    "prompt": f"a lighthouse at dusk, take {i}",
                    "quality": "low",
                },
            )
            assert made.status_code in (200, 201), made.text
            names.append(made.json()["name"])

        async def all_succeeded() -> bool:
            phases = [(await http.get(f"/api/v1/generations/{n}")).json()["phase"] for n in names]
            assert "Failed" not in phases, phases
            return all(p == "Succeeded" for p in phases)

        await eventually(all_succeeded, timeout=90, interval=0.5, what="the generations done")
        assert (await http.get("/")).status_code == 200  # a static request too
        return names


@pytest.mark.timeout(420)
async def test_every_dashboard_query_returns_data_from_the_running_stack(tmp_path: Path) -> None:
    prometheus_binary = binary("prometheus")
    rules = write_rule_file(tmp_path / "rules.yaml")
    (tmp_path / "dev").mkdir()
    dev = await spawn(
        str(Path(sys.executable).parent / "warmpool-sim"), "dev", "--studio-port", "0",
        "--time-scale", "60", cwd=tmp_path / "dev",
        env={"WARMPOOL_LOG_FORMAT": "json", "WARMPOOL_LOG_LEVEL": "INFO"},
    )  # fmt: skip
    prom: Process | None = None
    try:
        await eventually(lambda: dev.line_with("pool sdxl is Ready"), timeout=150,
                         interval=0.2, what=f"the sample pool Ready:\n{dev.tail()}")  # fmt: skip
        line = dev.line_with("/metrics (operator)")
        assert line, dev.tail()
        (operator_target,) = re.findall(r"http://(127\.0\.0\.1:\d+)/metrics \(operator\)", line)
        # The stack's own line (the children's JSON log lines may also name the studio).
        studio_lines = [
            m for ln in dev.lines for m in re.findall(r"^studio +http://(127\.0\.0\.1:\d+)/$", ln)
        ]
        assert studio_lines, dev.tail()
        studio_target = studio_lines[0]
        config = scrape_config(
            tmp_path,
            operator=operator_target,
            studio=studio_target,
            rules=rules,
        )
        prom_port = free_port()
        prom = await spawn(
            prometheus_binary, f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn", cwd=tmp_path,
        )  # fmt: skip
        api = Prometheus(f"http://127.0.0.1:{prom_port}")
        try:
            await check_the_stack(
                api,
                studio=f"http://{studio_target}",
                dev=dev,
                kubeconfig=tmp_path / "dev" / ".warmpool" / "kubeconfig",
            )
        except BaseException:
            print("---- prometheus\n" + prom.tail() + "\n---- dev stack\n" + dev.tail(60))
            raise
        finally:
            await api.http.aclose()
    finally:
        if prom is not None:
            await prom.stop(signal.SIGTERM, timeout=20)
        code = await dev.stop()
    assert code == 0, dev.tail()
    check_json_logs(dev.lines)


async def check_the_stack(api: Prometheus, *, studio: str, dev: Process, kubeconfig: Path) -> None:
    await eventually(api.ready, timeout=60, interval=0.2, what="Prometheus ready")

    async def both_up() -> bool:
        up = await api.query(f'up{{namespace="{TARGET_NAMESPACE}"}} == 1')
        return {r["metric"]["job"] for r in up} == {OPERATOR_JOB, STUDIO_JOB}

    await eventually(both_up, timeout=60, interval=0.5, what="both scrape targets up")
    await run_generations(studio)

    # The pool series keep the pool's namespace (honor_labels), not the target's.
    (ready,) = await api.query('warmpool_pool_ready_replicas{pool="sdxl"}')
    assert ready["metric"]["namespace"] == "default"
    assert float(ready["value"][1]) >= 1

    # Terminations: scale the pool to 0 and shorten its idle timeout, as an admin who wants the
    # machine gone now would (scaling alone keeps a Ready instance for idleTimeout, 5 minutes).
    scaled = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(kubeconfig),
        "-n", "default", "patch", "gpupool/sdxl", "--type=merge",
        "-p", '{"spec": {"replicas": 0, "idleTimeout": "5s"}}',
    )  # fmt: skip
    assert await scaled.wait() == 0
    terminated = 'warmpool_terminations_total{namespace="default", pool="sdxl"}'
    await eventually(lambda: api.query(terminated), timeout=60, interval=0.5,
                     what="a termination counted")  # fmt: skip

    # Every panel query returns data (queries wait for the recording rules and rates to fill).
    pending = {(b, t, e) for b, t, e in panel_queries() if not needs_an_event(b, t, e)}
    assert len(pending) >= 40
    empty: set[tuple[str, str, str]] = set()

    async def all_have_data() -> bool:
        empty.clear()
        for board, title, expr in sorted(pending):
            if not await api.query(expr):
                empty.add((board, title, expr))
        pending.intersection_update(empty)
        return not pending

    with contextlib.suppress(AssertionError):
        await eventually(all_have_data, timeout=60, interval=1.0, what="every panel's data")
    assert not empty, "panels without data:\n" + "\n".join(f"{b} / {t}: {e}" for b, t, e in empty)

    # The listed ones are listed for a reason: they really are empty without the event.
    excused = [(b, t, e) for b, t, e in panel_queries() if needs_an_event(b, t, e)]
    assert len(excused) == len(NEEDS_AN_EVENT)
    for board, title, expr in excused:
        if await api.query(expr):  # the event happened after all: fine, and worth knowing
            print(f"{board} / {title} has data: {needs_an_event(board, title, expr)} happened")

    # The dashboard variables list the sample pool and its namespace.
    for board, label, selector in variable_queries():
        values = await api.get(f"/api/v1/label/{label}/values", **{"match[]": selector})
        assert {"default", "sdxl"} & set(values), (board, label, values)

    # Both processes name their build; the studio exports no operator series.
    builds = await api.query("warmpool_build_info == 1")
    assert {r["metric"]["job"] for r in builds} == {OPERATOR_JOB, STUDIO_JOB}
    studio_names = {
        r["metric"]["__name__"]
        for r in await api.query(
            f'group by (__name__) ({{job="{STUDIO_JOB}", __name__=~"warmpool_.+"}})'
        )
    }
    assert "warmpool_studio_requests_total" in studio_names
    assert all(n.startswith("warmpool_studio_") or n == "warmpool_build_info" for n in studio_names)
    routes = {r["metric"]["route"] for r in await api.query("warmpool_studio_requests_total")}
    assert "/api/v1/generations/{name}" in routes and "static" in routes
    assert not any(re.search(r"/gen-|[0-9a-f]{8}", route) for route in routes), routes

    # Every rule evaluates without error; none fires on the healthy stack.
    async def all_evaluated() -> list[dict[str, Any]] | None:
        groups = (await api.get("/api/v1/rules"))["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        done = all(not r["lastEvaluation"].startswith("0001") for r in rules)
        return rules if rules and done else None

    rules = await eventually(all_evaluated, timeout=30, interval=0.5, what="rules evaluated")
    assert len(rules) >= 16
    broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not broken, broken
    firing = [r["name"] for r in rules if r["type"] == "alerting" and r["state"] == "firing"]
    assert not firing, firing
    assert dev.proc.returncode is None, dev.tail()


def check_json_logs(lines: list[str]) -> None:
    """Both children were started with WARMPOOL_LOG_FORMAT=json: every line they wrote is a
    JSON object (the dev stack's own progress lines are text and never start with ``{``)."""
    records = [json.loads(line) for line in lines if line.startswith("{")]
    loggers = {r["name"] for r in records}
    assert any(name.startswith("uvicorn") for name in loggers), loggers  # the studio
    assert any(name.startswith(("kopf", "warmpool.operator")) for name in loggers), loggers
    assert all({"levelname", "name", "message", "timestamp"} <= set(r) for r in records)
    text_logs = [ln for ln in lines if re.match(r"^(INFO|WARNING|ERROR|DEBUG)[: ]", ln)]
    assert not text_logs, text_logs[:5]
