"""``warmpool-sim dev`` as a child process for the dev-stack tests: its output collected line
by line, stopped with SIGINT as Ctrl-C would, its exit code kept."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DevStack:
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    code: int | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines[-n:])


@contextlib.asynccontextmanager
async def running(cwd: Path, *args: str) -> AsyncIterator[DevStack]:
    """Start ``warmpool-sim dev ARGS`` in ``cwd``; on leaving, stop it and keep its exit code
    in ``code`` (the body's own error, if any, still propagates)."""
    binary = Path(sys.executable).parent / "warmpool-sim"
    proc = await asyncio.create_subprocess_exec(
        str(binary), "dev", *args,
        cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    stack = DevStack(proc)

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            stack.lines.append(raw.decode(errors="replace").rstrip())

    reader = asyncio.create_task(read())
    try:
        yield stack
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        stack.code = await asyncio.wait_for(proc.wait(), timeout=40)
        # Read to the end: a reader cancelled before EOF leaves the pipe's transport open,
        # and its ResourceWarning fails whichever later test the garbage collector runs in.
        try:
            await asyncio.wait_for(reader, timeout=10)
        except TimeoutError:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
