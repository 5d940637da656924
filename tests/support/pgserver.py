"""A throw-away PostgreSQL server for the records tests (Debian's ``postgresql``).

``initdb`` a cluster in a temporary directory and ``pg_ctl`` it on a free loopback port
with trust authentication. PostgreSQL refuses to run as root: as root the cluster is
made and run by the ``postgres`` user (``runuser``), owner of the directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` with initdb, else initdb on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


BIN = pg_bin()
MISSING = BIN is None
WHY_MISSING = "PostgreSQL's initdb is missing (make test installs Debian's postgresql)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    dir: Path
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def start() -> PgServer:
    assert BIN is not None, WHY_MISSING
    root = Path(tempfile.mkdtemp(prefix="warmpool-pg-"))
    data = root / "data"
    user = "warmpool"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    os.chmod(root, 0o700)
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(
        _as_owner([str(BIN / "initdb"), "-D", str(data), "-U", user, "--auth=trust",
                   "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"]),
        **run,
    )  # fmt: skip
    port = _free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    subprocess.run(
        _as_owner([str(BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                   "-o", options, "-w", "-t", "60", "start"]),
        **run,
    )  # fmt: skip
    return PgServer(root, port, user)


def stop(server: PgServer) -> None:
    assert BIN is not None
    subprocess.run(
        _as_owner([str(BIN / "pg_ctl"), "-D", str(server.dir / "data"), "-m", "immediate",
                   "-w", "stop"]),
        check=False, capture_output=True, timeout=60,
    )  # fmt: skip
    shutil.rmtree(server.dir, ignore_errors=True)
