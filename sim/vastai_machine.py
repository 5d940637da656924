"""What a simulated machine runs: the operator's provisioning step, for real.

A rental whose environment carries the provisioning payload (``WARMPOOL_PS_*``, see the
operator's ``decisions/provisioning.py``; the simulator knows only the wire convention)
runs the line of its ``onstart`` tagged ``# warmpool models`` (the bootstrap that decodes
and runs the payload; the first line when none is tagged) with ``bash``, in a per-rental
directory that stands for the container's ``/workspace``: models land in
``<workspace>/ComfyUI/models``, which the rental's simulated ComfyUI lists, and the status
file in ``<workspace>/ComfyUI/output``, which it serves from ``/view``.

A rental with ``ENABLE_HTTPS=true`` and a line tagged ``# warmpool tls`` (the operator's
``decisions/channel.py``) runs that line first, with ``WARMPOOL_TLS_DIR`` standing for
``/etc``: the certificate and key it writes are what the rental's ComfyUI then serves
HTTPS with, as the Instance Portal's Caddy of Vast.ai's images serves
``/etc/instance.crt``.

The rest of ``onstart`` (the user's own script) is not run: the simulator does not execute
arbitrary text from a pool spec on the developer's machine. The run is bounded (``timeout``
real seconds, then the process group is killed) and killed when the rental stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

logger = logging.getLogger(__name__)

PAYLOAD_PREFIX = "WARMPOOL_PS_"
MODELS_TAG = "# warmpool models"
TLS_TAG = "# warmpool tls"


def provisions(env: dict[str, str]) -> bool:
    """Whether the rental carries a provisioning payload."""
    return any(k.startswith(PAYLOAD_PREFIX) for k in env)


def tagged_line(onstart: str, tag: str) -> str | None:
    """The line of ``onstart`` ending with ``tag``, or None."""
    for line in onstart.splitlines():
        if line.rstrip().endswith(tag):
            return line
    return None


def serves_tls(env: dict[str, str], onstart: str | None) -> bool:
    """Whether the rental asks its portal for HTTPS and brings the line that installs it."""
    return env.get("ENABLE_HTTPS", "").lower() == "true" and bool(
        onstart and tagged_line(onstart, TLS_TAG)
    )


async def install_tls(
    onstart: str, env: dict[str, str], workspace: Path, *, log: list[str]
) -> tuple[Path, Path] | None:
    """Run the TLS line; the (certificate, key) files it wrote, or None when it failed."""
    line = tagged_line(onstart, TLS_TAG) or ""
    etc = workspace / "etc"
    code = await _bash(line, {**env, "WARMPOOL_TLS_DIR": str(etc)}, workspace, 30.0, log)
    cert, key = etc / "instance.crt", etc / "instance.key"
    if code != 0 or not cert.is_file() or not key.is_file():
        log.append(f"warmpool tls: no certificate installed (exit {code})")
        return None
    return cert, key


def foreign_tls(workspace: Path) -> tuple[Path, Path]:
    """A certificate and key of the host's own (the ``foreign_cert`` fault)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the one you pinned")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    folder = workspace / "etc-foreign"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "instance.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "instance.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip
    return folder / "instance.crt", folder / "instance.key"


def machine_env(env: dict[str, str], workspace: Path) -> dict[str, str]:
    """The container's environment: the rental's variables (not the ``-p`` Docker options),
    the workspace, and the host's ``PATH`` (bash, curl and coreutils)."""
    tmp = workspace / ".tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    container = {k: v for k, v in env.items() if k.isidentifier()}
    return {
        **container,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workspace),
        "WORKSPACE": str(workspace),
        "TMPDIR": str(tmp),
    }


async def run_provisioning(
    onstart: str, env: dict[str, str], workspace: Path, *, timeout: float, log: list[str]
) -> int | None:
    """Run the bootstrap line of ``onstart``; its exit code, or ``None`` when killed."""
    bootstrap = tagged_line(onstart, MODELS_TAG) or onstart.split("\n", 1)[0]
    return await _bash(bootstrap, env, workspace, timeout, log)


async def _bash(
    line: str, env: dict[str, str], workspace: Path, timeout: float, log: list[str]
) -> int | None:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        line,
        cwd=workspace,
        env=machine_env(env, workspace),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        await _reap(proc)
        log.append(f"provisioning killed after {timeout:g}s")
        return None
    except asyncio.CancelledError:
        # Reaped before the cancellation goes on: a pipe left open when the loop closes
        # is an unclosed transport at garbage collection.
        await asyncio.shield(_reap(proc))
        raise
    for text in out.decode(errors="replace").splitlines()[-20:]:
        log.append(text)
    return proc.returncode


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Kill the session and read its output to the end, so the pipe and the transport close."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.communicate(), 5.0)
