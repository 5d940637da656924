"""Prepaid credits through Stripe, against localstripe (a stateful Stripe fake from PyPI,
run in-process on a free port): a purchase end to end (PaymentIntent, confirmation as
Stripe.js would do it, the signed ``payment_intent.succeeded`` webhook localstripe sends),
a generation debited at its estimate × markup, a failed job refunded, 402 with a link to
buy more, a replayed webhook applied once and a forged signature refused."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe
from waiting import eventually

SECRET = "sk_test_warmpool0123456789"
HOOK = "whsec_warmpool0123456789"
JOB = {"pool": "sdxl", "prompt": "a lighthouse at dusk", "quality": "low"}
MARKUP = 1.5


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    """localstripe's aiohttp app on 127.0.0.1:<free port>, in a thread (its pickling of
    the store to /tmp is switched off: nothing shared with other processes)."""
    from aiohttp import web

    with warnings.catch_warnings():  # its routes are plain functions (deprecated in aiohttp)
        warnings.simplefilter("ignore", DeprecationWarning)
        from localstripe import resources, server

    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    listening = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(server.app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        started["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started["runner"] = runner
        listening.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="localstripe", daemon=True)
    thread.start()
    assert listening.wait(timeout=20), "localstripe did not start"
    try:
        yield f"http://127.0.0.1:{started['port']}"
    finally:
        asyncio.run_coroutine_threadsafe(started["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def payments(localstripe: str) -> dict[str, Any]:
    return {
        "studio_payments": True,
        "studio_stripe_secret_key": SECRET,
        "studio_stripe_publishable_key": "pk_test_warmpool",
        "studio_stripe_webhook_secret": HOOK,
        "studio_stripe_api_base": localstripe,
        "studio_stripe_js_url": f"{localstripe}/js.stripe.com/v3/",
        "studio_credit_packs": [5.0, 20.0],
        "studio_credit_markup": MARKUP,
    }


def signed(event: dict[str, Any], secret: str = HOOK) -> tuple[bytes, str]:
    """A webhook body and its Stripe-Signature, as Stripe (and localstripe) make them."""
    body = json.dumps(event).encode()
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={t},v1={mac}"


def succeeded(event_id: str, owner: str, cents: int) -> dict[str, Any]:
    intent = {
        "id": f"pi_{event_id}", "object": "payment_intent", "amount": cents,
        "amount_received": cents, "currency": "usd", "metadata": {"owner": owner},
    }  # fmt: skip
    return {"id": event_id, "object": "event", "type": "payment_intent.succeeded",
            "created": int(time.time()), "data": {"object": intent}}  # fmt: skip


def test_a_purchase_end_to_end_then_a_debit_and_a_refund(served: Any, localstripe: str) -> None:
    stack = served(**payments(localstripe))
    registered = httpx.post(
        f"{localstripe}/_config/webhooks/studio",
        data={"url": f"{stack.url}/payments/webhook", "secret": HOOK},
    )
    assert registered.status_code == 200

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=stack.url, timeout=20) as http:
            # No credit yet: 402 with a link to buy more.
            r = await http.post("/api/v1/generations", json=JOB)
            assert r.status_code == 402 and r.json()["buyUrl"] == "/credits"
            assert r.json()["balance"] == 0
            bad = await http.post("/api/v1/credits/intents", json={"pack": 7})
            assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "pack"]

            made = await http.post("/api/v1/credits/intents", json={"pack": 20})
            assert made.status_code == 201, made.text
            intent = made.json()
            assert intent["clientSecret"].startswith(intent["id"])

            # What Stripe.js does in the Payment Element: a card, then the confirmation.
            transport = stripe.HTTPXClient()
            client = stripe.StripeClient(SECRET, base_addresses={"api": localstripe},
                                         http_client=transport)  # fmt: skip
            card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
            pm = await client.v1.payment_methods.create_async(params={"type": "card", "card": card})
            await client.v1.payment_intents.update_async(
                intent["id"], params={"payment_method": pm.id}
            )
            confirmed = await client.v1.payment_intents.confirm_async(intent["id"])
            await transport.close_async()
            assert confirmed.status == "succeeded"

            async def balance(expected: float) -> dict[str, Any] | None:
                got = (await http.get("/api/v1/credits")).json()
                return got if got["balance"] == pytest.approx(expected, abs=1e-6) else None

            credits = await eventually(lambda: balance(20.0), timeout=30,
                                       what="the webhook's credits")  # fmt: skip
            assert [e["kind"] for e in credits["entries"]] == ["purchase"]
            assert credits["entries"][0]["paymentIntent"] == intent["id"]

            # A generation takes its estimate × markup; failing, it is refunded in full.
            estimate = (await http.post("/api/v1/estimate", json=JOB)).json()["dollars"]
            job = await http.post("/api/v1/generations", json=JOB)
            assert job.status_code == 201, job.text
            await eventually(lambda: balance(round(20.0 - round(estimate * MARKUP, 6), 6)),
                             what="the debit")  # fmt: skip
            failed = {"phase": "Failed", "message": "machine lost"}
            await stack.drive.set_status(job.json()["name"], failed)
            after = await eventually(lambda: balance(20.0), what="the refund")
            assert [e["kind"] for e in after["entries"]] == ["refund", "debit", "purchase"]
            page = await http.get("/credits")
            assert page.status_code == 200 and f"{localstripe}/js.stripe.com/v3/" in page.text
            assert localstripe in page.headers["content-security-policy"]

    stack.run(scenario(), timeout=90)


def test_a_replayed_webhook_is_applied_once_and_a_forged_one_refused(
    served: Any, localstripe: str
) -> None:
    stack = served(**payments(localstripe))

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=stack.url, timeout=20) as http:
            body, signature = signed(succeeded("evt_once", "local", 500))
            for _ in range(3):  # Stripe retries; an attacker replays
                r = await http.post("/payments/webhook", content=body,
                                    headers={"Stripe-Signature": signature})  # fmt: skip
                assert r.status_code == 200
            forged_body, forged = signed(succeeded("evt_forged", "local", 100000), "whsec_guess")
            r = await http.post("/payments/webhook", content=forged_body,
                                headers={"Stripe-Signature": forged})  # fmt: skip
            assert r.status_code == 400
            tampered = body.replace(b"500", b"99999")
            r = await http.post("/payments/webhook", content=tampered,
                                headers={"Stripe-Signature": signature})  # fmt: skip
            assert r.status_code == 400
            r = await http.post("/payments/webhook", content=body)
            assert r.status_code == 400
            credits = (await http.get("/api/v1/credits")).json()
            assert credits["balance"] == 5.0
            assert [e["kind"] for e in credits["entries"]] == ["purchase"]

    stack.run(scenario())


def test_payments_are_off_by_default(served: Any) -> None:
    stack = served()
    http = httpx.Client(base_url=stack.url)
    assert http.get("/api/v1/credits").json()["enabled"] is False
    assert http.post("/payments/webhook", content=b"{}").status_code == 404
    assert http.post("/api/v1/credits/intents", json={"pack": 5}).status_code == 404
    http.close()


async def test_a_settlement_that_fails_once_is_tried_again(tmp_path: Any) -> None:
    """A finished job is seen once by the studio's watch, and a transient database error
    (SQLite busy under load) used to drop its settlement for good: the credit kept the
    whole estimate. It is tried again, and applied once."""
    from sqlalchemy.exc import OperationalError

    from warmpool.api.accounts.service import Accounts
    from warmpool.api.hub import JobEvent
    from warmpool.api.records.db import Database
    from warmpool.api.settings import StudioSettings

    url = f"sqlite+aiosqlite:///{tmp_path}/records.db"
    db = Database(url)
    await db.migrate()
    settings = StudioSettings(  # type: ignore[call-arg]
        _env_file=None, studio_auth="none", studio_records_url=url,
        **payments("http://127.0.0.1:9"),
    )  # fmt: skip
    accounts = Accounts(settings, db)
    credits = accounts.credits
    assert credits is not None
    await credits.purchase("evt_1", "ann", 1.0, "pi_1")
    key = await credits.debit("ann", 0.2)
    await credits.bind(key, "gen-1")
    real, calls = credits.settle, []

    async def flaky(*args: Any) -> bool:
        calls.append(args)
        if len(calls) == 1:
            raise OperationalError("UPDATE", {}, Exception("database is locked"))
        return await real(*args)

    credits.settle = flaky  # type: ignore[method-assign]
    accounts.start()
    job = {"metadata": {"name": "gen-1", "namespace": "default", "uid": "u1"},
           "spec": {"pool": "sdxl", "prompt": "x", "owner": "ann"},
           "status": {"phase": "Succeeded", "actualCost": 0.1,
                      "finishedAt": "2030-01-01T00:00:00Z"}}  # fmt: skip
    accounts.on_job(JobEvent(type="MODIFIED", object=job))
    await asyncio.wait_for(accounts.settled(), timeout=30)
    await accounts.close()
    assert len(calls) == 2
    assert await credits.balance("ann") == pytest.approx(1.0 - 0.1 * MARKUP)
    await db.close()
