"""What the operator makes of a machine's model downloads (pure).

The provisioning script (:mod:`.provisioning`) keeps a status file on the machine; the
liveness controller reads it through ComfyUI and calls:

- :func:`parse_report`: the file's bytes → :class:`ModelsReport` (``None`` when unreadable);
- :func:`progress`: the report, in the pool's model order → ``GpuInstance.status.models``;
- :func:`classify`: the report → :class:`ModelsVerdict`, what to do about the instance and
  the pool (the failure semantics, one table: :data:`SEMANTICS`);
- :func:`models_available`: the pool condition ``ModelsAvailable`` from a verdict.

And the policy asks :func:`download_time` / :func:`boot_with_models` for how much longer a
boot takes when the declared model bytes come over the offer's download bandwidth.

Failure semantics (stable reasons, also event reasons and metric labels):

| reason | instance | host cool-down | pool |
| --- | --- | --- | --- |
| ``ModelAuthFailed`` (401/403) | released | no | stops renting, ``ModelsAvailable=False`` |
| ``ModelNotFound`` (404) | released | no | stops renting, ``ModelsAvailable=False`` |
| ``ModelChecksumMismatch`` | replaced | no | |
| ``DiskFull`` | replaced | yes | |
| ``ModelDownloadStalled`` | replaced | yes | |
| ``ModelDownloadFailed`` (other) | replaced | no | |

A configuration error is the pool's, not the machine's: renting again would fail the same
way, so the pool stops renting (until its spec changes) and no host is blamed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ValidationError

from warmpool.crds.gpuinstance import ModelProgress
from warmpool.crds.gpupool import ModelSpec, ModelsUnavailable

Action = Literal["wait", "ready", "stop_renting", "replace"]

#: Download bandwidth assumed when the offer does not say (Mbit/s): a modest Vast.ai host.
DEFAULT_DOWNLOAD_MBPS = 500.0
#: Share of the measured bandwidth a single long download actually gets.
BANDWIDTH_EFFICIENCY = 0.6


@dataclass(frozen=True)
class Semantics:
    action: Action
    cool_down: bool
    configuration: bool


#: Reason → what it means for the instance, its host and the pool.
SEMANTICS: dict[str, Semantics] = {
    "ModelAuthFailed": Semantics("stop_renting", cool_down=False, configuration=True),
    "ModelNotFound": Semantics("stop_renting", cool_down=False, configuration=True),
    "ModelChecksumMismatch": Semantics("replace", cool_down=False, configuration=False),
    "DiskFull": Semantics("replace", cool_down=True, configuration=False),
    "ModelDownloadStalled": Semantics("replace", cool_down=True, configuration=False),
    "ModelDownloadFailed": Semantics("replace", cool_down=False, configuration=False),
}
#: The order in which failures of several models are reported: configuration errors
#: first (they stop the pool), then the host's faults, then the rest.
_PRECEDENCE = list(SEMANTICS)


class ModelsReport(BaseModel):
    """The status file the provisioning script writes (``version`` 1)."""

    version: int = 1
    done: bool = False
    models: list[ModelProgress] = []


@dataclass(frozen=True)
class ModelsVerdict:
    """What to do about an instance given its downloads."""

    action: Action
    reason: str = ""
    message: str = ""
    cool_down: bool = False
    #: The failed file (``folder/file``) and the HTTP status, for the pool condition.
    file: str = ""
    http_status: int | None = None

    @property
    def configuration_error(self) -> bool:
        return self.action == "stop_renting"


def parse_report(data: bytes | str) -> ModelsReport | None:
    """The status file's content, or ``None`` when it is not (yet) a valid report."""
    try:
        return ModelsReport.model_validate(json.loads(data))
    except (ValueError, ValidationError):
        return None


def progress(report: ModelsReport | None, models: Sequence[ModelSpec]) -> list[ModelProgress]:
    """One entry per declared model, in the pool's order (Pending until reported)."""
    seen = {(m.folder, m.file): m for m in (report.models if report else [])}
    out = []
    for m in models:
        got = seen.get((m.folder, m.file))
        if got is None:
            got = ModelProgress(folder=m.folder, file=m.file)
        if got.bytes_total is None and m.size_bytes is not None:
            got = got.model_copy(update={"bytes_total": m.size_bytes})
        out.append(got)
    return out


def classify(report: ModelsReport | None, models: Sequence[ModelSpec]) -> ModelsVerdict:
    """The instance's fate from its downloads: wait, ready, replace, or stop renting."""
    entries = progress(report, models)
    failed = [e for e in entries if e.phase == "Failed"]
    if failed:
        first = min(failed, key=lambda e: _rank(e.reason))
        meaning = SEMANTICS.get(first.reason, SEMANTICS["ModelDownloadFailed"])
        reason = first.reason if first.reason in SEMANTICS else "ModelDownloadFailed"
        name = f"{first.folder}/{first.file}"
        status = f"HTTP {first.http_status}" if first.http_status else _describe(reason)
        return ModelsVerdict(
            action=meaning.action,
            reason=reason,
            message=f"{name}: {status} ({reason})",
            cool_down=meaning.cool_down,
            file=name,
            http_status=first.http_status,
        )
    if entries and all(e.phase == "Present" for e in entries):
        return ModelsVerdict(action="ready", reason="ModelsPresent")
    done = sum(e.bytes_done for e in entries)
    total = sum(e.bytes_total or 0 for e in entries)
    left = sum(1 for e in entries if e.phase != "Present")
    return ModelsVerdict(
        action="wait",
        reason="ModelsDownloading",
        message=f"{left} of {len(entries)} models downloading, {_size(done)} of {_size(total)}",
    )


def models_available(verdict: ModelsVerdict) -> tuple[str, str, str] | None:
    """The pool's ``ModelsAvailable`` condition as (status, reason, message), or ``None``
    when the verdict says nothing about the pool (still downloading, or a machine fault)."""
    if verdict.configuration_error:
        return ("False", verdict.reason, verdict.message)
    if verdict.action == "ready":
        return ("True", "ModelsPresent", "every model downloaded and verified")
    return None


def renting_blocked(record: ModelsUnavailable | None, generation: int | None) -> str | None:
    """Why the pool must not rent (a configuration error seen at this generation), or None.

    Editing the pool (a new generation) lets it try again; so does clearing the record.
    """
    if record is None or record.generation != generation:
        return None
    return f"{record.message}; fix the model URL or token, then edit the pool to retry"


def pool_condition(
    record: ModelsUnavailable | None, generation: int | None, *, has_downloads: bool
) -> tuple[str, str, str, str] | None:
    """The pool's ``ModelsAvailable`` condition (type, status, reason, message), or None
    when the pool downloads nothing."""
    if not has_downloads:
        return None
    if record is not None and record.generation == generation:
        return ("ModelsAvailable", "False", record.reason, record.message)
    if record is not None:
        return ("ModelsAvailable", "Unknown", "Retrying", "the pool changed since: renting again")
    return ("ModelsAvailable", "True", "ModelsDownloadable", "no download refused")


def download_time(models: Sequence[ModelSpec], download_mbps: float | None) -> timedelta:
    """How long the declared model bytes take over ``download_mbps`` (Mbit/s).

    Models without ``sizeBytes`` count zero (unknown); a missing or zero bandwidth counts
    as :data:`DEFAULT_DOWNLOAD_MBPS`.
    """
    total = sum(m.size_bytes or 0 for m in models)
    mbps = download_mbps if download_mbps and download_mbps > 0 else DEFAULT_DOWNLOAD_MBPS
    return timedelta(seconds=total * 8 / (mbps * 1e6 * BANDWIDTH_EFFICIENCY))


def boot_with_models(
    observed: timedelta | None,
    *,
    default: timedelta,
    models: Sequence[ModelSpec],
    download_mbps: float | None,
) -> timedelta:
    """Expected rent → Ready time: the pool's observed median when known (it already holds
    the downloads), else the default boot plus the models' download time."""
    if observed is not None:
        return observed
    return default + download_time(models, download_mbps)


def _rank(reason: str) -> int:
    return _PRECEDENCE.index(reason) if reason in _PRECEDENCE else len(_PRECEDENCE)


def _describe(reason: str) -> str:
    return {
        "ModelChecksumMismatch": "size or sha256 differs from the declared one",
        "DiskFull": "no space left on the machine's disk",
        "ModelDownloadStalled": "no bytes received for the stall timeout",
    }.get(reason, "download failed")


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
