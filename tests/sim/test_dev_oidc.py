"""`warmpool-sim dev --oidc` as a person runs it: the bundled OpenID Connect provider comes
up with the stack, a person signs up through it and is signed in; Ctrl-C stops it too."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import devstack
import httpx
import psutil
import pytest
from oidcflow import sign_in_at_provider
from waiting import eventually

from warmpool.sim.oidc_provider import missing

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_dev_stack_with_oidc_signs_a_person_up(tmp_path: Path) -> None:
    port = free_port()
    children: list[psutil.Process] = []
    studio = f"http://127.0.0.1:{port}"
    async with devstack.running(
        tmp_path, "--oidc", "--oidc-port", "0", "--studio-port", str(port), "--time-scale", "60"
    ) as dev:
        await eventually(lambda: any("sign up / sign in" in ln for ln in dev.lines),
                         timeout=120, what="the studio with accounts")  # fmt: skip
        (issuer_line,) = [ln for ln in dev.lines if ln.startswith("OpenID Connect provider")]
        (issuer,) = re.findall(r"(http://127\.0\.0\.1:\d+)", issuer_line)
        children = psutil.Process(dev.pid).children(recursive=True)
        async with (
            httpx.AsyncClient(base_url=studio, timeout=10) as http,
            httpx.AsyncClient(timeout=10) as browser,
        ):
            assert (await http.get("/api/v1/me")).status_code == 401
            started = await http.get("/auth/login")
            assert started.status_code == 303
            assert started.headers["location"].startswith(issuer)
            back = await sign_in_at_provider(
                browser, started.headers["location"], "admin-ada", stop_at=f"{studio}/auth/"
            )
            q = parse_qs(urlsplit(back).query)
            done = await http.get(back.removeprefix(studio).split("?")[0], params={
                "code": q["code"][0], "state": q["state"][0]})  # fmt: skip
            assert done.status_code == 200, done.text
            me = (await http.get("/api/v1/me")).json()
            assert me["name"] == "admin-ada@example.test" and me["admin"] is True
    assert dev.code == 0, "\n".join(dev.lines[-30:])
    assert len(children) >= 3  # the provider, the operator and the studio
    leftovers = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not leftovers, f"processes left behind: {leftovers}"
