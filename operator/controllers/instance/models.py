"""Model downloads of one instance: read the machine's report, fill ``status.models``,
and apply the failure semantics of :mod:`warmpool.operator.decisions.downloads`.

The report is the provisioning step's status file, read through the machine's
authenticated ComfyUI port (``/view?type=output&subfolder=warmpool&filename=models.json``,
see :mod:`warmpool.operator.decisions.provisioning` for why this channel).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any, cast

from warmpool.crds.common import format_time
from warmpool.crds.gpuinstance import GpuInstance
from warmpool.crds.gpupool import GpuPool, ModelsUnavailable
from warmpool.operator import errors
from warmpool.operator.adapters import comfy, kube
from warmpool.operator.adapters.status import update_status
from warmpool.operator.decisions import downloads, provisioning
from warmpool.operator.deps import Deps

#: The report is a few hundred bytes per model; anything much larger is not one.
MAX_REPORT_BYTES = 256 * 1024
REPORT = comfy.OutputFile(
    filename=provisioning.STATUS_FILE,
    subfolder=provisioning.STATUS_SUBFOLDER,
    type="output",
    node_id="",
)


async def read_report(
    deps: Deps, url: str, token: str | None, *, pin: str | None = None
) -> downloads.ModelsReport | None:
    """The machine's download report; None while it is not there (yet) or unreadable."""
    client = deps.comfy.client(url, token, timeout=deps.settings.comfy_timeout, pin=pin)
    data = b""
    try:
        stream = cast(
            "AsyncGenerator[bytes, None]", client.fetch_output(REPORT, limit=MAX_REPORT_BYTES)
        )
        async with contextlib.aclosing(stream) as chunks:
            async for chunk in chunks:
                data += chunk
    except (errors.ComfyError, TimeoutError):  # too large included: not a report
        return None
    return downloads.parse_report(data)


async def observe(
    deps: Deps, pool: GpuPool, url: str, token: str | None, *, pin: str | None = None
) -> tuple[list[dict[str, Any]], downloads.ModelsVerdict]:
    """``status.models`` and the verdict for the pool's downloadable models."""
    wanted = provisioning.downloadable(pool.spec.template.models)
    report = await read_report(deps, url, token, pin=pin)
    entries = downloads.progress(report, wanted)
    verdict = downloads.classify(report, wanted)
    return [e.model_dump(by_alias=True) for e in entries], verdict


def bytes_done(entries: list[dict[str, Any]]) -> int:
    """Bytes on disk over every model of an observed ``status.models``."""
    return sum(int(e.get("bytesDone") or 0) for e in entries)


async def record_unavailable(
    deps: Deps, pool: GpuPool, verdict: downloads.ModelsVerdict, now: datetime
) -> None:
    """A configuration error: the pool stops renting at its current generation."""
    record = ModelsUnavailable(
        reason=verdict.reason,
        message=verdict.message,
        file=verdict.file,
        http_status=verdict.http_status,
        generation=pool.metadata.generation,
        time=format_time(now) or "",
    )

    def mutate(_: dict[str, Any]) -> dict[str, Any]:
        return {"modelsUnavailable": record.model_dump(by_alias=True)}

    await update_status(
        deps.kube, kube.GPUPOOLS, pool.metadata.namespace or "default", pool.metadata.name, mutate
    )


async def clear_unavailable(deps: Deps, pool: GpuPool) -> None:
    """Every model came down: a configuration error recorded before is over."""
    if pool.status.models_unavailable is None:
        return

    def mutate(status: dict[str, Any]) -> dict[str, Any] | None:
        return {"modelsUnavailable": None} if status.get("modelsUnavailable") else None

    await update_status(
        deps.kube, kube.GPUPOOLS, pool.metadata.namespace or "default", pool.metadata.name, mutate
    )


def needs_downloads(inst: GpuInstance, pool: GpuPool) -> bool:
    """Whether the instance's downloads are still to be followed."""
    return bool(provisioning.downloadable(pool.spec.template.models)) and not inst.status.ready_at
