"""The accounts service of the studio (``app.state.accounts``): the provider, the store,
and the session look-up the :class:`~warmpool.api.auth.Authenticator` calls in oidc mode."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import tenacity
from fastapi import Request

from warmpool.api.accounts.credits import Credits, Stripe
from warmpool.api.accounts.limits import Spending
from warmpool.api.accounts.oidc import Provider
from warmpool.api.accounts.store import Identity, NameTakenError, Store
from warmpool.api.auth import SESSION_COOKIE, User
from warmpool.api.hub import JobEvent
from warmpool.api.records.db import Database
from warmpool.api.records.tables import Account
from warmpool.api.records.usage import usage_of
from warmpool.api.settings import StudioSettings

PROVIDER_TIMEOUT_SECONDS = 10.0
SETTLE_ATTEMPTS = 5
logger = logging.getLogger(__name__)

__all__ = ["Accounts", "NameTakenError"]


class Accounts:
    def __init__(
        self, settings: StudioSettings, db: Database, *, http: httpx.AsyncClient | None = None
    ) -> None:
        self.settings = settings
        self.store = Store(db)
        self.spending = Spending(
            db, daily=settings.studio_spend_daily_limit, monthly=settings.studio_spend_monthly_limit
        )
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=PROVIDER_TIMEOUT_SECONDS)
        self.provider: Provider | None = None
        s = settings
        if s.studio_auth == "oidc" and s.studio_oidc_issuer and s.studio_oidc_client_id:
            secret = s.studio_oidc_client_secret
            self.provider = Provider(
                s.studio_oidc_issuer,
                s.studio_oidc_client_id,
                secret.get_secret_value() if secret else None,
                scopes=s.studio_oidc_scopes,
                http=self.http,
            )
        self._admins = frozenset(settings.studio_admins)
        self.credits: Credits | None = None
        self.stripe: Stripe | None = None
        key, hook = s.studio_stripe_secret_key, s.studio_stripe_webhook_secret
        if s.studio_payments and key and hook:
            self.credits = Credits(db, markup=s.studio_credit_markup)
            self.stripe = Stripe(
                key.get_secret_value(), hook.get_secret_value(), api_base=s.studio_stripe_api_base
            )
        self._finished: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.credits is not None:
            self._task = asyncio.create_task(self._settle_jobs(), name="warmpool-credits")

    def after(self, first: Callable[[JobEvent], None]) -> Callable[[JobEvent], None]:
        def both(event: JobEvent) -> None:
            first(event)
            self.on_job(event)

        return both

    def on_job(self, event: JobEvent) -> None:
        """The hub's hook (payments on): a finished job is settled against its debit."""
        if self.credits is None or not event.object.get("status"):
            return
        row = usage_of(event.object, deleted=event.type == "DELETED")
        if row is not None:
            self._finished.put_nowait(row)

    async def settled(self) -> None:
        await self._finished.join()

    async def _settle_jobs(self) -> None:
        assert self.credits is not None
        done: set[str] = set()
        while True:
            row = await self._finished.get()
            try:
                if row["job"] not in done:
                    # A finished job is seen once: a transient database error (SQLite busy
                    # under load) must not lose its settlement, so it is tried again.
                    async for attempt in tenacity.AsyncRetrying(
                        stop=tenacity.stop_after_attempt(SETTLE_ATTEMPTS),
                        wait=tenacity.wait_exponential(multiplier=0.5, max=8),
                        reraise=True,
                    ):
                        with attempt:
                            await self.credits.settle(
                                row["owner"], row["job"], row["phase"], row["cost"]
                            )
                    done.add(row["job"])
            except Exception:
                logger.exception("could not settle the credits of a job")
            finally:
                self._finished.task_done()

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(seconds=self.settings.studio_session_seconds)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.stripe is not None:
            await self.stripe.close()
        if self._own_http:
            await self.http.aclose()

    def user(self, account: Account) -> User:
        return User(account.name, admin=account.admin or account.name in self._admins)

    def identity(self, claims: dict[str, Any]) -> Identity | None:
        """The person a verified ID token (and userinfo) names; None without a user name,
        or when the name is an e-mail address the provider says is not verified."""
        s = self.settings
        name = claims.get(s.studio_oidc_user_claim)
        if not isinstance(name, str) or not name.strip():
            return None
        if s.studio_oidc_user_claim == "email" and claims.get("email_verified") is False:
            return None
        raw = claims.get(s.studio_oidc_groups_claim) or []
        listed = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
        groups = tuple(sorted({str(g).strip() for g in listed if str(g).strip()}))
        email = claims.get("email")
        assert self.provider is not None
        return Identity(
            issuer=self.provider.issuer,
            subject=str(claims["sub"]),
            name=name.strip()[:320],
            email=email[:320] if isinstance(email, str) else "",
            groups=groups,
            admin=s.studio_admin_group in groups,
        )

    # ------------------------------------------------------------ the Authenticator's hooks

    async def user_of(self, request: Request) -> User | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        found = await self.store.session_of(cookie)
        return self.user(found[0]) if found else None

    async def end(self, request: Request) -> None:
        await self.sign_out(request)

    async def sign_out(self, request: Request) -> str | None:
        """End the request's session; its ID token, for the provider's sign-out."""
        cookie = request.cookies.get(SESSION_COOKIE)
        return await self.store.revoke_token(cookie) if cookie else None

    @staticmethod
    def groups_of(account: Account) -> list[str]:
        try:
            groups = json.loads(account.groups)
        except ValueError:
            return []
        return [str(g) for g in groups] if isinstance(groups, list) else []
