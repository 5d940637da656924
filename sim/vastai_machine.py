"""What a simulated machine runs: the operator's provisioning step, for real.

A rental whose environment carries the provisioning payload (``WARMPOOL_PS_*``, see the
operator's ``decisions/provisioning.py``; the simulator knows only the wire convention)
runs the first line of its ``onstart`` (the bootstrap that decodes and runs the payload)
with ``bash``, in a per-rental directory that stands for the container's ``/workspace``:
models land in ``<workspace>/ComfyUI/models``, which the rental's simulated ComfyUI lists,
and the status file in ``<workspace>/ComfyUI/output``, which it serves from ``/view``.

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


def provisions(env: dict[str, str]) -> bool:
    """Whether the rental carries a provisioning payload."""
    return any(k.startswith(PAYLOAD_PREFIX) for k in env)


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
    bootstrap = onstart.split("\n", 1)[0]
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        bootstrap,
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
        _kill(proc)
        await proc.wait()
        log.append(f"provisioning killed after {timeout:g}s")
        return None
    except asyncio.CancelledError:
        _kill(proc)
        raise
    for line in out.decode(errors="replace").splitlines()[-20:]:
        log.append(line)
    return proc.returncode


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
