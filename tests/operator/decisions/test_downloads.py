"""Failure semantics of model downloads, progress, the pool condition, boot time (T1)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from warmpool.crds.gpuinstance import ModelProgress
from warmpool.crds.gpupool import ModelSpec
from warmpool.operator.decisions import downloads
from warmpool.operator.decisions.downloads import ModelsReport, ModelsVerdict

A = ModelSpec(folder="checkpoints", file="a.safetensors", sizeBytes=1000)
B = ModelSpec(folder="vae", file="b.safetensors")


def entry(
    m: ModelSpec, phase: str, reason: str = "", http: int | None = None, done: int = 0
) -> Any:
    return ModelProgress(
        folder=m.folder, file=m.file, phase=phase, reason=reason, httpStatus=http, bytesDone=done
    )


def report(*entries: ModelProgress, done: bool = False) -> ModelsReport:
    return ModelsReport(done=done, models=list(entries))


@pytest.mark.parametrize(
    ("rep", "expected"),
    [
        pytest.param(None, ModelsVerdict("wait", "ModelsDownloading",
                     "2 of 2 models downloading, 0 B of 1.0 kB"), id="no-report-yet"),
        pytest.param(report(entry(A, "Downloading", done=500), entry(B, "Present", done=10)),
                     ModelsVerdict("wait", "ModelsDownloading",
                                   "1 of 2 models downloading, 510 B of 1.0 kB"), id="downloading"),
        pytest.param(report(entry(A, "Present"), entry(B, "Present"), done=True),
                     ModelsVerdict("ready", "ModelsPresent"), id="all-present"),
        pytest.param(report(entry(A, "Failed", "ModelAuthFailed", 401), entry(B, "Present")),
                     ModelsVerdict("stop_renting", "ModelAuthFailed",
                                   "checkpoints/a.safetensors: HTTP 401 (ModelAuthFailed)",
                                   cool_down=False, file="checkpoints/a.safetensors",
                                   http_status=401), id="401-stops-renting-no-cooldown"),
        pytest.param(report(entry(A, "Present"), entry(B, "Failed", "ModelNotFound", 404)),
                     ModelsVerdict("stop_renting", "ModelNotFound",
                                   "vae/b.safetensors: HTTP 404 (ModelNotFound)",
                                   file="vae/b.safetensors", http_status=404),
                     id="404-stops-renting"),
        pytest.param(report(entry(A, "Failed", "ModelChecksumMismatch"), entry(B, "Present")),
                     ModelsVerdict("replace", "ModelChecksumMismatch",
                                   "checkpoints/a.safetensors: size or sha256 differs from the "
                                   "declared one (ModelChecksumMismatch)",
                                   file="checkpoints/a.safetensors"), id="checksum-replaces"),
        pytest.param(report(entry(A, "Failed", "DiskFull")),
                     ModelsVerdict("replace", "DiskFull",
                                   "checkpoints/a.safetensors: no space left on the machine's "
                                   "disk (DiskFull)", cool_down=True,
                                   file="checkpoints/a.safetensors"), id="disk-full-cools-down"),
        pytest.param(report(entry(A, "Failed", "ModelDownloadStalled")),
                     ModelsVerdict("replace", "ModelDownloadStalled",
                                   "checkpoints/a.safetensors: no bytes received for the stall "
                                   "timeout (ModelDownloadStalled)", cool_down=True,
                                   file="checkpoints/a.safetensors"), id="stall-cools-down"),
        pytest.param(report(entry(A, "Failed", "ModelDownloadFailed", 500)),
                     ModelsVerdict("replace", "ModelDownloadFailed",
                                   "checkpoints/a.safetensors: HTTP 500 (ModelDownloadFailed)",
                                   file="checkpoints/a.safetensors", http_status=500),
                     id="server-error-replaces-no-cooldown"),
        pytest.param(report(entry(A, "Failed", "DiskFull"),
                            entry(B, "Failed", "ModelAuthFailed", 403)),
                     ModelsVerdict("stop_renting", "ModelAuthFailed",
                                   "vae/b.safetensors: HTTP 403 (ModelAuthFailed)",
                                   file="vae/b.safetensors", http_status=403),
                     id="configuration-error-wins-over-a-host-fault"),
        pytest.param(report(entry(A, "Failed", "SomethingNew", 418)),
                     ModelsVerdict("replace", "ModelDownloadFailed",
                                   "checkpoints/a.safetensors: HTTP 418 (ModelDownloadFailed)",
                                   file="checkpoints/a.safetensors", http_status=418),
                     id="unknown-reason-is-a-download-failure"),
    ],
)  # fmt: skip
def test_classify(rep: ModelsReport | None, expected: ModelsVerdict) -> None:
    assert downloads.classify(rep, [A, B]) == expected


def test_every_reason_the_script_writes_has_semantics() -> None:
    from warmpool.operator.decisions import provisioning

    script = provisioning.compose_script([A])
    written = {w for w in downloads.SEMANTICS if f"Failed {w}" in script}
    assert written == set(downloads.SEMANTICS)


def test_progress_keeps_the_pools_order_and_fills_the_unreported() -> None:
    got = downloads.progress(report(entry(B, "Downloading", done=5)), [A, B])
    assert [(p.file, p.phase, p.bytes_done, p.bytes_total) for p in got] == [
        ("a.safetensors", "Pending", 0, 1000),
        ("b.safetensors", "Downloading", 5, None),
    ]


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"[]", json.dumps({"models": [{"folder": "x"}]}).encode()],
    ids=["empty", "truncated", "not-an-object", "entry-without-file"],
)
def test_parse_report_refuses_what_is_not_a_report(data: bytes) -> None:
    assert downloads.parse_report(data) is None


def test_parse_report_reads_the_scripts_shape() -> None:
    text = (
        '{"version":1,"done":true,"models":[{"folder":"vae","file":"b","phase":"Failed",'
        '"bytesDone":0,"bytesTotal":null,"reason":"ModelNotFound","httpStatus":404}]}'
    )
    rep = downloads.parse_report(text)
    assert rep is not None and rep.done
    assert rep.models[0].http_status == 404 and rep.models[0].reason == "ModelNotFound"


@pytest.mark.parametrize(
    ("verdict", "condition"),
    [
        pytest.param(ModelsVerdict("stop_renting", "ModelAuthFailed", "m: HTTP 401"),
                     ("False", "ModelAuthFailed", "m: HTTP 401"), id="configuration-error"),
        pytest.param(ModelsVerdict("ready", "ModelsPresent"),
                     ("True", "ModelsPresent", "every model downloaded and verified"), id="ready"),
        pytest.param(ModelsVerdict("replace", "DiskFull", cool_down=True), None,
                     id="machine-fault-says-nothing-about-the-pool"),
        pytest.param(ModelsVerdict("wait"), None, id="downloading"),
    ],
)  # fmt: skip
def test_models_available(verdict: ModelsVerdict, condition: tuple[str, str, str] | None) -> None:
    assert downloads.models_available(verdict) == condition


@pytest.mark.parametrize(
    ("sizes", "mbps", "seconds"),
    [
        pytest.param([6_000_000_000], 1000.0, 80.0, id="6GB-at-1Gbit"),
        pytest.param([3_000_000_000, 3_000_000_000], 100.0, 800.0, id="two-files-at-100Mbit"),
        pytest.param([6_000_000_000], None, 160.0, id="unknown-bandwidth-uses-default"),
        pytest.param([6_000_000_000], 0.0, 160.0, id="zero-bandwidth-uses-default"),
        pytest.param([None], 1000.0, 0.0, id="undeclared-sizes-count-zero"),
    ],
)
def test_download_time(sizes: list[int | None], mbps: float | None, seconds: float) -> None:
    models = [ModelSpec(folder="c", file=f"{n}", sizeBytes=s) for n, s in enumerate(sizes)]
    assert downloads.download_time(models, mbps) == timedelta(seconds=seconds)


def test_boot_with_models_prefers_the_observed_boot() -> None:
    big = [ModelSpec(folder="c", file="x", sizeBytes=6_000_000_000)]
    default = timedelta(minutes=5)
    assert downloads.boot_with_models(
        None, default=default, models=big, download_mbps=1000.0
    ) == timedelta(minutes=5, seconds=80)
    observed = timedelta(minutes=7)
    assert (
        downloads.boot_with_models(observed, default=default, models=big, download_mbps=1.0)
        == observed
    )


def test_renting_is_blocked_at_the_generation_of_the_configuration_error() -> None:
    from warmpool.crds.gpupool import ModelsUnavailable

    rec = ModelsUnavailable(reason="ModelAuthFailed", message="c/a: HTTP 401 (ModelAuthFailed)",
                            generation=3)  # fmt: skip
    assert downloads.renting_blocked(None, 3) is None
    assert downloads.renting_blocked(rec, 4) is None
    blocked = downloads.renting_blocked(rec, 3)
    assert blocked is not None and blocked.startswith("c/a: HTTP 401")
    expected = ("ModelsAvailable", "False", "ModelAuthFailed", "c/a: HTTP 401 (ModelAuthFailed)")
    assert downloads.pool_condition(rec, 3, has_downloads=True) == expected
    assert downloads.pool_condition(rec, 4, has_downloads=True)[1] == "Unknown"  # type: ignore[index]
    assert downloads.pool_condition(None, 4, has_downloads=True)[1] == "True"  # type: ignore[index]
    assert downloads.pool_condition(rec, 3, has_downloads=False) is None


def test_the_policys_expected_boot_adds_the_model_download_before_any_boot_was_seen() -> None:
    from warmpool.operator.decisions import policy

    big = [ModelSpec(folder="c", file="x", sizeBytes=6_000_000_000)]
    assert policy.expected_boot([], models=big, download_mbps=1000.0) == (
        policy.DEFAULT_BOOT + timedelta(seconds=80)
    )
    assert policy.expected_boot([]) == policy.DEFAULT_BOOT
