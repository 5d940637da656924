"""`warmpool-sim dev --payments` as a person runs it: localstripe comes up with the stack
as its own process, its webhook points at the studio, and the studio's Stripe settings
point at it; a pack bought through the studio (a card token made against localstripe with
the publishable key, as its Stripe.js does) arrives as credit; Ctrl-C stops it too. The
keys are random per run and never printed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from pathlib import Path

import httpx
import psutil
from waiting import eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_dev_stack_with_payments_sells_credits(tmp_path: Path) -> None:
    port = free_port()
    binary = Path(sys.executable).parent / "warmpool-sim"
    proc = await asyncio.create_subprocess_exec(
        str(binary), "dev", "--payments", "--studio-port", str(port), "--time-scale", "60",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    lines: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            lines.append(raw.decode(errors="replace").rstrip())

    reader = asyncio.create_task(read())
    children: list[psutil.Process] = []
    studio = f"http://127.0.0.1:{port}"
    try:
        await eventually(lambda: any(ln.startswith("credits ") for ln in lines),
                         timeout=120, what="the studio with payments")  # fmt: skip
        (stripe_line,) = [ln for ln in lines if ln.startswith("Stripe (localstripe)")]
        (base,) = re.findall(r"(http://127\.0\.0\.1:\d+)", stripe_line)
        children = psutil.Process(proc.pid).children(recursive=True)
        async with httpx.AsyncClient(base_url=studio, timeout=20) as http:
            info = (await http.get("/api/v1/credits")).json()
            assert info["enabled"] and info["flow"] == "card-token" and info["balance"] == 0
            assert info["packs"] == [5, 20, 50] and info["markup"] == 1.25
            page = await http.get("/credits")
            assert f'src="{base}/js.stripe.com/v3/"' in page.text
            assert "stripe.com " not in page.headers["content-security-policy"]
            intent = (await http.post("/api/v1/credits/intents", json={"pack": 5})).json()
            card = {"card[number]": "4242424242424242", "card[exp_month]": "12",
                    "card[exp_year]": "2034", "card[cvc]": "123",
                    "key": info["publishableKey"]}  # fmt: skip
            token = (await http.post(f"{base}/v1/tokens", data=card)).json()["id"]
            paid = await http.post(f"/api/v1/credits/intents/{intent['id']}/confirm",
                                   json={"token": token})  # fmt: skip
            assert paid.status_code == 200 and paid.json()["status"] == "succeeded"

            async def credited() -> bool:
                return bool((await http.get("/api/v1/credits")).json()["balance"] == 5)

            await eventually(credited, timeout=30, what="the webhook's credit")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), timeout=40)
        # Read to the end: a reader cancelled before EOF leaves the pipe's transport open,
        # and its ResourceWarning fails whichever later test the garbage collector runs in.
        try:
            await asyncio.wait_for(reader, timeout=10)
        except TimeoutError:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    assert code == 0, "\n".join(lines[-30:])
    out = "\n".join(lines)
    assert "sk_test_" not in out and "whsec_" not in out, "a key was printed"
    assert len(children) >= 3  # localstripe, the operator and the studio
    leftovers = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not leftovers, f"processes left behind: {leftovers}"
