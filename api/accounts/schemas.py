"""Wire models of the accounts API (camelCase on the wire, like the rest of the studio)."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from warmpool.api.schemas import Out
from warmpool.crds.common import CamelModel


class AuthConfigOut(Out):
    mode: str
    login_url: str | None = None


class SessionOut(Out):
    id: int
    created: datetime
    last_seen: datetime
    expires: datetime
    address: str
    user_agent: str
    current: bool


class AccountOut(Out):
    name: str
    admin: bool
    auth: str
    email: str = ""
    groups: list[str] = []
    issuer: str = ""
    created: datetime | None = None
    sessions: list[SessionOut] = []


class WindowOut(Out):
    spent: float
    limit: float | None
    left: float | None
    resets_at: datetime


class SpendOut(Out):
    day: WindowOut
    month: WindowOut


class LimitRequest(CamelModel):
    model_config = ConfigDict(extra="forbid")

    daily: float | None = Field(None, ge=0, le=1_000_000, description="Dollars per UTC day.")
    monthly: float | None = Field(None, ge=0, le=10_000_000, description="Dollars per UTC month.")


class LimitOverrideOut(Out):
    owner: str
    daily: float | None
    monthly: float | None
    updated_at: datetime
    updated_by: str
    spend: SpendOut


class LimitsOut(Out):
    default_daily: float | None
    default_monthly: float | None
    overrides: list[LimitOverrideOut]


class CreditEntryOut(Out):
    kind: str
    amount: float
    job: str
    payment_intent: str
    at: datetime


class CreditsOut(Out):
    enabled: bool
    balance: float
    packs: list[float]
    markup: float
    currency: str
    publishable_key: str | None = None
    flow: str = "payment-element"
    entries: list[CreditEntryOut] = []


class IntentRequest(CamelModel):
    model_config = ConfigDict(extra="forbid")

    pack: float = Field(gt=0, le=100_000, description="Dollars: one of the configured packs.")


class IntentOut(Out):
    id: str
    client_secret: str
    amount: float


class ConfirmRequest(CamelModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(
        pattern=r"^tok_[A-Za-z0-9]{1,64}$",
        description="The card's token, made by Stripe.js in the browser (card-token flow).",
    )


class ConfirmOut(Out):
    id: str
    status: str = Field(description="The PaymentIntent's status: succeeded, requires_action, …")
    client_secret: str


class SignedOutOut(Out):
    end_session_url: str | None = Field(
        None, description="Where to send the browser to sign out at the provider too."
    )
