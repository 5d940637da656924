"""`warmpool-sim dev --payments` as a person runs it: localstripe comes up with the stack
as its own process, its webhook points at the studio, and the studio's Stripe settings
point at it; a pack bought through the studio (a card token made against localstripe with
the publishable key, as its Stripe.js does) arrives as credit; Ctrl-C stops it too. The
keys are random per run and never printed."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import devstack
import httpx
import psutil
from waiting import eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_dev_stack_with_payments_sells_credits(tmp_path: Path) -> None:
    port = free_port()
    children: list[psutil.Process] = []
    studio = f"http://127.0.0.1:{port}"
    async with devstack.running(
        tmp_path, "--payments", "--studio-port", str(port), "--time-scale", "60"
    ) as dev:
        await eventually(lambda: any(ln.startswith("credits ") for ln in dev.lines),
                         timeout=120, what="the studio with payments")  # fmt: skip
        (stripe_line,) = [ln for ln in dev.lines if ln.startswith("Stripe (localstripe)")]
        (base,) = re.findall(r"(http://127\.0\.0\.1:\d+)", stripe_line)
        children = psutil.Process(dev.pid).children(recursive=True)
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
    assert dev.code == 0, "\n".join(dev.lines[-30:])
    out = "\n".join(dev.lines)
    assert "sk_test_" not in out and "whsec_" not in out, "a key was printed"
    assert len(children) >= 3  # localstripe, the operator and the studio
    leftovers = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not leftovers, f"processes left behind: {leftovers}"
