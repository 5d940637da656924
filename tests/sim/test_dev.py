"""`warmpool-sim dev` (what `make demo` runs) as a user runs it: start, create, stop."""

from __future__ import annotations

import re
from pathlib import Path

import devstack
import httpx
import psutil
from waiting import eventually


async def test_dev_stack_generates_an_image_and_stops_cleanly(tmp_path: Path) -> None:
    children: list[psutil.Process] = []
    async with devstack.running(tmp_path, "--studio-port", "0", "--time-scale", "60") as dev:
        await eventually(lambda: any("pool sdxl is Ready" in ln for ln in dev.lines),
                         timeout=120, what="the sample pool Ready")  # fmt: skip
        # The studio's address is printed (it listens on the port the stack bound for it).
        (studio_line,) = [ln for ln in dev.lines if ln.startswith("studio ")]
        (studio,) = re.findall(r"(http://127\.0\.0\.1:\d+)/$", studio_line)
        # The operator's metrics address is printed, and it serves the pool's series.
        (metrics_line,) = [ln for ln in dev.lines if "/metrics (operator)" in ln]
        (operator_metrics,) = re.findall(r"(http://\S+/metrics) \(operator\)", metrics_line)
        # At least one Ready (a hedge rental may be Ready too until it idles out).
        ready = re.compile(
            r'^warmpool_pool_ready_replicas\{namespace="default",pool="sdxl"\} ([1-9]\d*)\.0$', re.M
        )
        async with httpx.AsyncClient(timeout=10) as metrics_http:

            async def exposition() -> str | None:
                text = (await metrics_http.get(operator_metrics)).text
                return text if ready.search(text) else None

            exposed = await eventually(exposition, timeout=30, interval=0.5,
                                       what="the pool's ready gauge exported")  # fmt: skip
        assert "warmpool_build_info{" in exposed
        assert (tmp_path / ".warmpool" / "kubeconfig").exists()
        children = psutil.Process(dev.pid).children(recursive=True)
        assert len(children) >= 2  # the operator and the studio
        async with httpx.AsyncClient(base_url=studio, timeout=10) as http:
            made = await http.post("/api/v1/generations",
                                   json={"pool": "sdxl", "prompt": "a red kite over dunes",
                                         "quality": "low"})  # fmt: skip
            assert made.status_code in (200, 201), made.text
            name = made.json()["name"]

            async def succeeded() -> dict[str, object] | None:
                job = (await http.get(f"/api/v1/generations/{name}")).json()
                return job if job["phase"] == "Succeeded" else None

            job = await eventually(succeeded, timeout=60, what="the generation Succeeded")
            output = (await http.get(f"/api/v1/generations/{name}/outputs/0")).content
            assert output.startswith(b"\x89PNG")
            assert job["status"]["outputs"][0]["size"] == len(output)  # type: ignore[index]
    assert dev.code == 0, "\n".join(dev.lines[-30:])
    assert any(ln == "stopped" for ln in dev.lines)
    leftovers = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not leftovers, f"processes left behind: {leftovers}"
