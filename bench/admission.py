"""Benchmark: what the validating admission webhook adds to a GenerationJob create (issue 15).

The emulated API with the chart's ValidatingWebhookConfiguration (rendered by ``helm
template``, its Helm-generated certificate served by the real operator's Kopf webhook
server, in process) against the same API without webhooks, measured in the same run:
create latency p50/p99 for a clean job, for a job the policy refuses, and for a job
composed with a muse (one extra GET by the operator), and their ratios to the reference.

Run: ``.venv/bin/python bench/admission.py [--jobs 200]``. Prints the figures and writes
``bench/results/admission.json``. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import SecretStr
from stack import API, RESULTS, wait_until

from warmpool.operator import main
from warmpool.operator.settings import OperatorSettings
from warmpool.sim.cluster import RunningCluster, start_cluster

CHART = Path(__file__).resolve().parents[1] / "charts" / "warmpool"
JOBS = "/apis/warmpool.dev/v1alpha1/namespaces/default/generationjobs"


def render_webhook() -> dict[str, dict[str, Any]]:
    helm = shutil.which("helm", path=str(Path(sys.executable).parent)) or "helm"
    out = subprocess.run(
        [helm, "template", "wp", str(CHART), "-n", "warmpool", "--show-only",
         "templates/webhook.yaml"], capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return {d["kind"]: d for d in yaml.safe_load_all(out) if d}


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def job(name: str, prompt: str, muse: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"pool": "bench", "prompt": prompt}
    if muse:
        spec["museRef"] = muse
    return {"apiVersion": API, "kind": "GenerationJob", "metadata": {"name": name}, "spec": spec}


async def creates(http: httpx.AsyncClient, n: int, tag: str) -> dict[str, list[float]]:
    cases = {
        "clean": lambda i: job(f"{tag}-c{i}", "a lighthouse at dusk, oil painting"),
        "refused": lambda i: job(f"{tag}-r{i}", "a child on a swing"),
        "with-muse": lambda i: job(f"{tag}-m{i}", "on a beach", muse="ada"),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for i in range(n):
        for case, make in cases.items():
            start = time.perf_counter()
            await http.post(JOBS, json=make(i))
            times[case].append((time.perf_counter() - start) * 1000)
    return times


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 3),
    }


async def run(n: int) -> dict[str, Any]:
    cluster: RunningCluster = await start_cluster()
    folder = Path(tempfile.mkdtemp(prefix="warmpool-bench-admission-"))
    try:
        os.environ["KUBECONFIG"] = str(cluster.write_kubeconfig(folder / "kubeconfig"))
        muse = {"displayName": "Ada", "age": 30, "promptTemplate": "{prompt}, {name}"}
        cluster.create({"apiVersion": API, "kind": "Muse", "metadata": {"name": "ada",
                        "namespace": "default"}, "spec": muse})  # fmt: skip
        async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as http:
            reference = await creates(http, n, "ref")
            docs = render_webhook()
            (folder / "tls").mkdir()
            for key in ("tls.crt", "tls.key"):
                (folder / "tls" / key).write_bytes(base64.b64decode(docs["Secret"]["data"][key]))
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            svc = docs["Service"]["metadata"]
            cluster.emulator.webhooks.services[(svc["namespace"], svc["name"])] = (
                "127.0.0.1",
                port,
            )
            cluster.create(docs["ValidatingWebhookConfiguration"])
            settings = OperatorSettings(
                vastai_url="http://127.0.0.1:9",
                vastai_api_key=SecretStr("bench-key-0123456789"),
                artifacts_url=f"file://{folder / 'artifacts'}",
                watch_timeout=2.0,
                webhook_port=port,
                webhook_addr="127.0.0.1",
                webhook_cert_dir=str(folder / "tls"),
            )
            stop, ready = asyncio.Event(), asyncio.Event()
            task = asyncio.create_task(main.run(settings, stop_flag=stop, ready_flag=ready,
                                                health=False))  # fmt: skip
            await ready.wait()
            await wait_until(lambda: listening(port), 30, "the webhook server listening")
            webhook = await creates(http, n, "hook")
            stop.set()
            await asyncio.wait_for(task, 30)
    finally:
        await cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    figures: dict[str, Any] = {"jobs_per_case": n, "reference": {}, "webhook": {}, "ratio_p50": {}}
    for case in reference:
        figures["reference"][case] = summary(reference[case])
        figures["webhook"][case] = summary(webhook[case])
        figures["ratio_p50"][case] = round(
            figures["webhook"][case]["p50_ms"] / figures["reference"][case]["p50_ms"], 2
        )
    return figures


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="creates per case")
    args = parser.parse_args()
    figures = asyncio.run(run(args.jobs))
    for case in figures["reference"]:
        ref, hook = figures["reference"][case], figures["webhook"][case]
        print(f"{case:>10}: no webhook p50 {ref['p50_ms']:.2f} ms p99 {ref['p99_ms']:.2f} ms | "
              f"webhook p50 {hook['p50_ms']:.2f} ms p99 {hook['p99_ms']:.2f} ms | "
              f"x{figures['ratio_p50'][case]}")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "admission.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main_()
