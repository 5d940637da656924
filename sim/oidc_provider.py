"""The bundled OpenID Connect provider (npm ``oidc-provider``, run by Node.js): started by
the account tests and by ``warmpool-sim dev --oidc``.

``sim/oidc/provider.mjs`` configures it: one client for the studio, development
interactions (any login and password: a login starting with ``admin`` is in the admin
group), the claims in the ID token. ``make test`` / ``make demo`` install the package
into ``sim/oidc/node_modules`` (pinned by its package-lock.json).
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent / "oidc"
SCRIPT = HERE / "provider.mjs"
START_TIMEOUT_SECONDS = 60.0


def missing() -> str | None:
    """Why the provider cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is missing (Node.js 20 runs the bundled OpenID Connect provider)"
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        return f"oidc-provider is not installed in {HERE}/node_modules (make test installs it)"
    return None


@dataclass
class OidcProvider:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    process: subprocess.Popen[bytes] = field(repr=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_provider(
    *,
    redirect_uris: list[str],
    client_id: str = "warmpool-studio",
    client_secret: str | None = None,
    admin_group: str = "warmpool-admins",
    application_type: str = "web",
    id_token_ttl: int = 3600,
    port: int = 0,
    quiet: bool = True,
) -> OidcProvider:
    """Start the provider and wait until it listens (its first stdout line names the issuer)."""
    why = missing()
    if why:
        raise RuntimeError(why)
    node = shutil.which("node")
    assert node is not None
    secret = client_secret or secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "OIDC_PORT": str(port),
        "OIDC_CLIENT_ID": client_id,
        "OIDC_CLIENT_SECRET": secret,
        "OIDC_REDIRECT_URIS": ",".join(redirect_uris),
        "OIDC_ADMIN_GROUP": admin_group,
        "OIDC_APPLICATION_TYPE": application_type,
        "OIDC_ID_TOKEN_TTL": str(id_token_ttl),
    }
    process = subprocess.Popen(
        [node, str(SCRIPT)],
        cwd=HERE,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else None,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    line = b""
    with selectors.DefaultSelector() as sel:
        sel.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or process.poll() is not None or not sel.select(timeout=left):
                process.kill()
                process.wait()
                raise RuntimeError("the OpenID Connect provider did not start")
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                continue
            line += chunk
    issuer = str(json.loads(line.splitlines()[0])["issuer"])
    return OidcProvider(issuer=issuer, client_id=client_id, client_secret=secret, process=process)
