"""Prepaid credits (payments on): the ledger of entries and Stripe.

The ledger (``credit_entries``) holds entries only; a balance is the sum of a user's
entries, so it cannot drift from them. Each entry has a unique ``key``, so the same
Stripe event or job is applied once however often it arrives:

=============  =====================  ==========================================
kind           key                    amount
=============  =====================  ==========================================
``purchase``   the Stripe event id    + the PaymentIntent's amount received
``debit``      ``debit:<job>``        − estimate × markup, at submission
``settle``     ``settle:<job>``       + (estimate − actual cost) × markup, at the end
``refund``     ``refund:<job>``       + the whole debit, when the job failed
=============  =====================  ==========================================

Purchases use PaymentIntents (the Payment Element), not Checkout Sessions: the studio
creates an intent of a configured pack for the caller, the browser confirms it with
Stripe.js, and the ``payment_intent.succeeded`` webhook — its signature verified by the
``stripe`` library — adds the credits.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import stripe
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from warmpool.api.records.audit import utc
from warmpool.api.records.db import Database
from warmpool.api.records.tables import CreditEntry


class PaymentError(Exception):
    """Stripe could not be used (the message names no key)."""


class PaymentNotFoundError(PaymentError):
    """No such PaymentIntent of this payer."""


class PaymentDeclinedError(PaymentError):
    """The card was declined (the message is Stripe's, meant for the payer)."""


class InsufficientCreditError(Exception):
    """A generation costs more credit than the caller has (the route answers 402)."""

    def __init__(self, balance: float, needed: float) -> None:
        self.balance = balance
        self.needed = needed
        super().__init__(
            f"this generation needs ${needed:.4f} of credit and you have ${balance:.4f}: "
            "buy more credit"
        )


@dataclass(frozen=True)
class Entry:
    kind: str
    amount: float
    job: str
    payment_intent: str
    at: datetime


class Credits:
    def __init__(self, db: Database, *, markup: float) -> None:
        self.db = db
        self.markup = markup

    async def _add(self, row: dict[str, Any]) -> bool:
        insert = pg_insert if self.db.backend == "postgresql" else sqlite_insert
        stmt = insert(CreditEntry).values(**row).on_conflict_do_nothing(index_elements=["key"])
        async with self.db.session() as s:
            result = await s.execute(stmt)
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def balance(self, owner: str) -> float:
        async with self.db.session() as s:
            total = await s.scalar(
                select(func.coalesce(func.sum(CreditEntry.amount), 0.0)).where(
                    CreditEntry.owner == owner
                )
            )
        return round(float(total or 0.0), 6)

    async def statement(self, owner: str, *, limit: int = 200) -> tuple[float, Sequence[Entry]]:
        """The balance and the newest entries it sums, read together: the entries are those
        up to the last one the balance counted (an entry written between two separate reads
        showed a settlement beside a balance without it)."""
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(
                        func.coalesce(func.sum(CreditEntry.amount), 0.0), func.max(CreditEntry.id)
                    ).where(CreditEntry.owner == owner)
                )
            ).one()
            total, last = row[0], cast("int | None", row[1])  # max() of no rows is NULL
            if last is None:
                return round(float(total or 0.0), 6), []
            rows = await s.scalars(
                select(CreditEntry)
                .where(CreditEntry.owner == owner, CreditEntry.id <= last)
                .order_by(CreditEntry.id.desc())
                .limit(limit)
            )
            entries = [Entry(r.kind, r.amount, r.job, r.payment_intent, utc(r.at)) for r in rows]
        return round(float(total or 0.0), 6), entries

    async def history(self, owner: str, *, limit: int = 200) -> Sequence[Entry]:
        async with self.db.session() as s:
            rows = await s.scalars(
                select(CreditEntry)
                .where(CreditEntry.owner == owner)
                .order_by(CreditEntry.id.desc())
                .limit(limit)
            )
            return [Entry(r.kind, r.amount, r.job, r.payment_intent, utc(r.at)) for r in rows]

    async def purchase(self, event_id: str, owner: str, amount: float, intent: str) -> bool:
        """Credit a succeeded payment; False when this event was applied before."""
        return await self._add({
            "owner": owner, "kind": "purchase", "amount": round(amount, 6), "key": event_id,
            "job": "", "payment_intent": intent, "at": datetime.now(UTC),
        })  # fmt: skip

    async def debit(self, owner: str, estimate: float) -> str:
        """Take estimate × markup for a job about to be created, or raise
        :class:`InsufficientCreditError`; returns the entry's key (see :meth:`bind`)."""
        needed = round(estimate * self.markup, 6)
        key = f"debit:pending-{secrets.token_hex(12)}"
        async with self.db.write_lock, self.db.session() as s:
            if self.db.backend == "postgresql":
                await s.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:o))"), {"o": f"credit:{owner}"}
                )
            total = await s.scalar(
                select(func.coalesce(func.sum(CreditEntry.amount), 0.0)).where(
                    CreditEntry.owner == owner
                )
            )
            balance = round(float(total or 0.0), 6)
            if balance < needed:
                raise InsufficientCreditError(balance, needed)
            s.add(CreditEntry(owner=owner, kind="debit", amount=-needed, key=key, job="",
                              payment_intent="", at=datetime.now(UTC)))  # fmt: skip
        return key

    async def bind(self, key: str, job: str) -> None:
        async with self.db.session() as s:
            await s.execute(
                update(CreditEntry)
                .where(CreditEntry.key == key)
                .values(key=f"debit:{job}", job=job)
            )

    async def release(self, key: str) -> None:
        """The job could not be created: the debit is cancelled by its own refund entry."""
        async with self.db.session() as s:
            row = await s.scalar(select(CreditEntry).where(CreditEntry.key == key))
            if row is not None:
                s.add(CreditEntry(owner=row.owner, kind="refund", amount=-row.amount,
                                  key=f"refund:{key}", job="", payment_intent="",
                                  at=datetime.now(UTC)))  # fmt: skip

    async def settle(self, owner: str, job: str, phase: str, cost: float) -> bool:
        """A finished job: a failed one is refunded in full; any other is settled at its
        actual cost × markup. False when there was no debit or it was settled before."""
        async with self.db.session() as s:
            debit = await s.scalar(select(CreditEntry).where(CreditEntry.key == f"debit:{job}"))
        if debit is None or debit.owner != owner:
            return False
        taken = -debit.amount
        if phase == "Failed":
            kind, amount = "refund", taken
        else:
            kind, amount = "settle", round(taken - cost * self.markup, 6)
        return await self._add({
            "owner": owner, "kind": kind, "amount": amount, "key": f"{kind}:{job}", "job": job,
            "payment_intent": "", "at": datetime.now(UTC),
        })  # fmt: skip


class Stripe:
    """The studio's Stripe account: PaymentIntents and webhook events."""

    def __init__(self, secret_key: str, webhook_secret: str, *, api_base: str | None) -> None:
        self._webhook_secret = webhook_secret
        bases: dict[str, str] = {"api": api_base} if api_base else {}
        self._http = stripe.HTTPXClient()
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses=bases,  # type: ignore[arg-type]
            http_client=self._http,
            max_network_retries=2,
        )

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def create_intent(self, owner: str, amount: float, currency: str) -> tuple[str, str]:
        """A PaymentIntent for ``amount`` (id, client secret)."""
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params={
                    "amount": round(amount * 100),
                    "currency": currency,
                    "metadata": {"owner": owner, "credits": f"{amount:.2f}"},
                }
            )
        except stripe.StripeError as e:
            raise PaymentError(f"Stripe refused the payment: {type(e).__name__}") from e
        return intent.id, str(intent.client_secret)

    async def confirm_with_token(self, intent_id: str, owner: str, token: str) -> tuple[str, str]:
        """The card-token flow (localstripe): pay ``owner``'s own PaymentIntent with the card
        of a token Stripe.js made in the browser (the card number never reaches the studio);
        returns (status, client secret). ``requires_action`` leaves the authentication (3-D
        Secure) to Stripe.js's ``confirmCardPayment``."""
        intents = self.client.v1.payment_intents
        try:
            intent = await intents.retrieve_async(intent_id)
            if (intent.to_dict().get("metadata") or {}).get("owner") != owner:
                raise PaymentNotFoundError("no such payment")
            if intent.status == "requires_payment_method":
                card = (await self.client.v1.tokens.retrieve_async(token)).card
                if card is None:
                    raise PaymentError("the token holds no card")
                await intents.update_async(intent_id, params={"payment_method": card.id})
                intent = await intents.confirm_async(intent_id)
        except stripe.CardError as e:
            raise PaymentDeclinedError(e.user_message or "the card was declined") from e
        except stripe.InvalidRequestError as e:
            if e.http_status == 404:
                raise PaymentNotFoundError("no such payment or card token") from e
            raise PaymentError(f"Stripe refused the payment: {type(e).__name__}") from e
        except stripe.StripeError as e:
            raise PaymentError(f"Stripe refused the payment: {type(e).__name__}") from e
        return str(intent.status), str(intent.client_secret)

    def event(self, payload: bytes, signature: str) -> stripe.Event:
        """The verified event; raises ``stripe.SignatureVerificationError`` or ValueError."""
        event: stripe.Event = stripe.Webhook.construct_event(
            payload, signature, self._webhook_secret
        )
        return event
