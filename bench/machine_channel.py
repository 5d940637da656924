"""Benchmark: what the hostile-machine defences cost on the ComfyUI channel.

Figures, printed and written to ``bench/results/machine_channel.json``:
- CPU milliseconds per request (client and simulator share the process, so both ends count)
  and wall time for ``GET /system_stats`` and a 4 MiB
  ``GET /view`` over the pinned TLS channel, against plain HTTP measured in the same run
  (the ratio is the figure; both go through the operator's ``ClientPool`` and the byte caps);
- bytes pulled from an endless ``/view`` before the image cap stops it.

Run: ``.venv/bin/python bench/machine_channel.py [--requests 300]``. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from warmpool.operator import errors
from warmpool.operator.adapters import comfy, machine_tls
from warmpool.operator.adapters.comfy_clients import ClientPool
from warmpool.operator.adapters.comfy_limits import ComfyLimits
from warmpool.sim.clock import ScaledClock
from warmpool.sim.comfyui import start_comfyui

RESULTS = Path(__file__).parent / "results"
TOKEN = "bench-token-0123456789abcdef"
BIG = 4 * 1024 * 1024


async def _measure(
    client: comfy.ComfyClient, requests: int, output: comfy.OutputFile
) -> dict[str, float]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(requests):
        await client.system_stats()
    cpu1, wall1 = time.process_time(), time.perf_counter()
    for _ in range(max(requests // 30, 5)):
        async with contextlib.aclosing(client.fetch_output(output, limit=BIG * 2)) as chunks:  # type: ignore[type-var]
            async for _chunk in chunks:
                pass
    cpu2, wall2 = time.process_time(), time.perf_counter()
    views = max(requests // 30, 5)
    return {
        "stats_cpu_ms": (cpu1 - cpu0) * 1000 / requests,
        "stats_wall_ms": (wall1 - wall0) * 1000 / requests,
        "view_4mib_cpu_ms": (cpu2 - cpu1) * 1000 / views,
        "view_4mib_wall_ms": (wall2 - wall1) * 1000 / views,
    }


async def run(requests: int) -> dict[str, Any]:
    identity = machine_tls.new_identity("bench")
    folder = Path(tempfile.mkdtemp(prefix="bench-channel-"))
    (folder / "c").write_text(identity.cert_pem)
    (folder / "k").write_text(identity.key_pem)
    clock = ScaledClock(50.0)
    plain = await start_comfyui(token=TOKEN, clock=clock)
    sealed = await start_comfyui(token=TOKEN, clock=clock, tls_cert=str(folder / "c"),
                                 tls_key=str(folder / "k"))  # fmt: skip
    for server in (plain, sealed):
        (server.root / "output" / "big.png").write_bytes(b"\x89PNG" + b"\0" * (BIG - 4))
    output = comfy.OutputFile("big.png", "", "output", "9")
    pool = ClientPool(limits=ComfyLimits())
    pool.allow_http = True  # the plain reference only
    try:
        figures = {
            "http": await _measure(pool.client(plain.url, TOKEN, timeout=10.0), requests, output),
            "tls": await _measure(pool.client(sealed.url, TOKEN, timeout=10.0,
                                              pin=identity.cert_pem), requests, output),
        }  # fmt: skip
        plain.huge_answer("/view", 0, count=1)
        capped = pool.client(plain.url, TOKEN, timeout=10.0)
        pulled = 0
        try:
            async with contextlib.aclosing(
                capped.fetch_output(output, limit=64 * 1024 * 1024)
            ) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    pulled += len(chunk)
        except errors.ComfyAnswerTooLargeError:
            pass
    finally:
        await pool.aclose()
        await plain.stop()
        await sealed.stop()
    ratios = {k: figures["tls"][k] / figures["http"][k] for k in figures["tls"]}
    return {
        "requests": requests,
        "figures": figures,
        "tls_over_http": ratios,
        "endless_view_bytes_passed_before_abort": pulled,
        "image_cap": 64 * 1024 * 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    result = asyncio.run(run(args.requests))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "machine_channel.json").write_text(json.dumps(result, indent=2) + "\n")
    for kind, values in result["figures"].items():
        print(kind, " ".join(f"{k}={v:.3f}" for k, v in values.items()))
    print("tls/http", " ".join(f"{k}={v:.2f}" for k, v in result["tls_over_http"].items()))
    print("endless /view: passed on", result["endless_view_bytes_passed_before_abort"],
          "bytes before the cap of", result["image_cap"])  # fmt: skip


if __name__ == "__main__":
    main()
