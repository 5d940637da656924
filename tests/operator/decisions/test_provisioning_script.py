"""The provisioning script, run for real by bash and curl against a local model server.

Not pure like the rest of this folder (it runs processes), but fast and without the
operator: each test composes the script for a few models, runs it in a temporary
workspace and reads what landed on disk and what the status file says.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from model_server import ModelServer, Route

from warmpool.crds.gpupool import ModelSpec, SecretKeyRef, TemplateSpec
from warmpool.operator.decisions import provisioning

TOKEN = "hf_sEcReT0123456789abcdef"
BLOB = os.urandom(300_000)


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as s:
        yield s


def model(url: str, file: str = "a.safetensors", **kw: Any) -> ModelSpec:
    return ModelSpec.model_validate({"folder": "checkpoints", "file": file, "url": url, **kw})


def run(
    tmp_path: Path,
    models: list[ModelSpec],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, dict[str, Any], str]:
    script = provisioning.compose_script(models, stall_seconds=2, report_seconds=1)
    path = tmp_path / "provision.sh"
    path.write_text(script)
    full = {
        "PATH": os.environ["PATH"],
        "WORKSPACE": str(tmp_path / "workspace"),
        "TMPDIR": str(tmp_path),
        **(env or {}),
    }
    done = subprocess.run(
        ["bash", str(path)], env=full, capture_output=True, text=True, timeout=timeout, check=False
    )
    status = tmp_path / "workspace" / "ComfyUI" / "output" / provisioning.STATUS_PATH
    return done.returncode, json.loads(status.read_text()), done.stderr


def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "workspace" / "ComfyUI" / "models"


def outcome(status: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(m["phase"], m["reason"], m["httpStatus"]) for m in status["models"]]


def test_downloads_verify_and_land_under_their_names(tmp_path: Path, server: ModelServer) -> None:
    route = Route(data=BLOB)
    url = server.add("/m/a.safetensors", route)
    other = server.add("/m/b.safetensors", Route(data=b"x" * 1000))
    rc, status, _ = run(
        tmp_path,
        [
            model(url, sha256=route.sha256, sizeBytes=len(BLOB)),
            model(other, file="b.safetensors"),
        ],
    )
    assert rc == 0
    assert (models_dir(tmp_path) / "checkpoints" / "a.safetensors").read_bytes() == BLOB
    assert sorted(p.name for p in (models_dir(tmp_path) / "checkpoints").iterdir()) == [
        "a.safetensors",
        "b.safetensors",
    ]
    assert status["done"] is True
    assert status["models"] == [
        {"folder": "checkpoints", "file": "a.safetensors", "phase": "Present",
         "bytesDone": len(BLOB), "bytesTotal": len(BLOB), "reason": "", "httpStatus": None},
        {"folder": "checkpoints", "file": "b.safetensors", "phase": "Present",
         "bytesDone": 1000, "bytesTotal": 1000, "reason": "", "httpStatus": None},
    ]  # fmt: skip


def test_the_token_goes_to_the_origin_only_never_to_the_redirect_host(
    tmp_path: Path, server: ModelServer
) -> None:
    url = server.add("/resolve/a", Route(data=BLOB, token=TOKEN, redirect_to_cdn="/blob/a"))
    ref = SecretKeyRef(name="hf", key="token")
    rc, status, stderr = run(
        tmp_path,
        [model(url, tokenSecret={"name": "hf", "key": "token"})],
        env={provisioning.token_variable(ref): TOKEN},
    )
    assert rc == 0, stderr
    assert (models_dir(tmp_path) / "checkpoints" / "a.safetensors").read_bytes() == BLOB
    origin = [s for s in server.seen if s.host == "127.0.0.1"]
    cdn = [s for s in server.seen if s.host == "127.0.0.2"]
    assert [s.authorization for s in origin] == [f"Bearer {TOKEN}"]
    assert cdn and all(s.authorization is None for s in cdn)
    assert TOKEN not in json.dumps(status) and TOKEN not in stderr


def test_the_token_is_not_on_curls_command_line() -> None:
    """``ps`` on the machine shows argv: the header goes through ``curl -K -`` (stdin)."""
    script = provisioning.compose_script([model("https://h/x", tokenSecret={"name": "hf"})])
    assert "-K -" in script and '-H "Authorization' not in script


@pytest.mark.parametrize(
    ("route", "reason", "code"),
    [
        pytest.param(Route(data=BLOB, token=TOKEN), "ModelAuthFailed", 401, id="no-token-401"),
        pytest.param(Route(status=403), "ModelAuthFailed", 403, id="forbidden-403"),
        pytest.param(None, "ModelNotFound", 404, id="missing-404"),
        pytest.param(Route(status=500), "ModelDownloadFailed", 500, id="server-error-500"),
    ],
)
def test_http_failures_have_stable_reasons(
    tmp_path: Path, server: ModelServer, route: Route | None, reason: str, code: int
) -> None:
    url = server.add("/m/a", route) if route is not None else server.url("/nothing/here")
    rc, status, _ = run(tmp_path, [model(url)])
    assert rc == 1
    assert outcome(status) == [("Failed", reason, code)]
    assert not (models_dir(tmp_path) / "checkpoints" / "a.safetensors").exists()


def test_wrong_bytes_are_a_checksum_mismatch_and_never_land(
    tmp_path: Path, server: ModelServer
) -> None:
    url = server.add("/m/a", Route(data=BLOB))
    rc, status, _ = run(tmp_path, [model(url, sha256="0" * 64)])
    assert rc == 1
    assert outcome(status) == [("Failed", "ModelChecksumMismatch", None)]
    assert list((models_dir(tmp_path) / "checkpoints").iterdir()) == []


def test_a_wrong_size_is_a_checksum_mismatch(tmp_path: Path, server: ModelServer) -> None:
    url = server.add("/m/a", Route(data=BLOB))
    rc, status, _ = run(tmp_path, [model(url, sizeBytes=len(BLOB) + 1)])
    assert (rc, outcome(status)) == (1, [("Failed", "ModelChecksumMismatch", None)])


def test_a_stalled_transfer_is_reported_and_its_part_file_kept(
    tmp_path: Path, server: ModelServer
) -> None:
    url = server.add("/m/a", Route(data=BLOB, stall_after=100_000))
    rc, status, _ = run(tmp_path, [model(url, sizeBytes=len(BLOB))])
    assert rc == 1
    assert outcome(status) == [("Failed", "ModelDownloadStalled", None)]
    part = models_dir(tmp_path) / "checkpoints" / ".a.safetensors.part"
    assert part.stat().st_size == 100_000
    assert status["models"][0]["bytesDone"] == 100_000


def test_a_partial_file_is_resumed_with_a_range_request(
    tmp_path: Path, server: ModelServer
) -> None:
    route = Route(data=BLOB)
    url = server.add("/m/a", route)
    folder = models_dir(tmp_path) / "checkpoints"
    folder.mkdir(parents=True)
    (folder / ".a.safetensors.part").write_bytes(BLOB[:120_000])
    rc, _, _ = run(tmp_path, [model(url, sha256=route.sha256)])
    assert rc == 0
    assert (folder / "a.safetensors").read_bytes() == BLOB
    assert [s.range for s in server.seen] == ["bytes=120000-"]


def test_a_server_without_ranges_starts_over(tmp_path: Path, server: ModelServer) -> None:
    route = Route(data=BLOB, ranges=False)
    url = server.add("/m/a", route)
    folder = models_dir(tmp_path) / "checkpoints"
    folder.mkdir(parents=True)
    (folder / ".a.safetensors.part").write_bytes(b"junk" * 100)
    rc, _, stderr = run(tmp_path, [model(url, sha256=route.sha256)])
    assert rc == 0, stderr
    assert (folder / "a.safetensors").read_bytes() == BLOB


def test_a_present_verified_file_is_not_downloaded_again(
    tmp_path: Path, server: ModelServer
) -> None:
    route = Route(data=BLOB)
    url = server.add("/m/a", route)
    folder = models_dir(tmp_path) / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "a.safetensors").write_bytes(BLOB)
    rc, status, _ = run(tmp_path, [model(url, sha256=route.sha256)])
    assert (rc, outcome(status)) == (0, [("Present", "", None)])
    assert server.seen == []


def test_a_present_file_that_does_not_verify_is_replaced(
    tmp_path: Path, server: ModelServer
) -> None:
    route = Route(data=BLOB)
    url = server.add("/m/a", route)
    folder = models_dir(tmp_path) / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "a.safetensors").write_bytes(b"old")
    rc, _, _ = run(tmp_path, [model(url, sha256=route.sha256)])
    assert rc == 0 and (folder / "a.safetensors").read_bytes() == BLOB


def test_a_full_disk_is_disk_full(tmp_path: Path, server: ModelServer) -> None:
    """The part file is ``/dev/full``: every write fails with ENOSPC, as on a full disk."""
    url = server.add("/m/a", Route(data=BLOB))
    folder = models_dir(tmp_path) / "checkpoints"
    folder.mkdir(parents=True)
    (folder / ".a.safetensors.part").symlink_to("/dev/full")
    rc, status, _ = run(tmp_path, [model(url)])
    assert (rc, outcome(status)) == (1, [("Failed", "DiskFull", None)])


def test_models_dir_is_overridable(tmp_path: Path, server: ModelServer) -> None:
    url = server.add("/m/a", Route(data=b"abc"))
    rc, _, _ = run(tmp_path, [model(url)], env={"WARMPOOL_MODELS_DIR": str(tmp_path / "elsewhere")})
    assert rc == 0 and (tmp_path / "elsewhere" / "checkpoints" / "a.safetensors").exists()


def test_downloads_run_in_parallel_but_bounded(tmp_path: Path, server: ModelServer) -> None:
    slow = [Route(data=b"y" * 40_000, delay=0.05, chunk=4_000) for _ in range(5)]
    urls = [server.add(f"/m/{n}", r) for n, r in enumerate(slow)]
    models = [model(u, file=f"{n}.safetensors") for n, u in enumerate(urls)]
    script = provisioning.compose_script(models, parallel=2, report_seconds=1)
    path = tmp_path / "p.sh"
    path.write_text(script)
    env = {"PATH": os.environ["PATH"], "WORKSPACE": str(tmp_path / "w"), "TMPDIR": str(tmp_path)}
    done = subprocess.run(["bash", str(path)], env=env, timeout=60, check=False)
    assert done.returncode == 0
    assert server.peak == 2
    assert len(list((tmp_path / "w" / "ComfyUI" / "models" / "checkpoints").iterdir())) == 5


def test_the_onstart_bootstrap_decodes_and_runs_the_payload(
    tmp_path: Path, server: ModelServer
) -> None:
    url = server.add("/m/a", Route(data=b"abc"))
    template = TemplateSpec(models=[model(url)], onstart="echo user-onstart-ran")
    p = provisioning.compose_provisioning(template)
    env = {
        "PATH": os.environ["PATH"],
        "WORKSPACE": str(tmp_path / "w"),
        "TMPDIR": str(tmp_path),
        **p.env,
    }
    done = subprocess.run(
        ["bash", "-c", p.onstart], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "user-onstart-ran"
    assert (tmp_path / "w" / "ComfyUI" / "models" / "checkpoints" / "a.safetensors").exists()
