"""Settings of accounts and spending limits, part of :class:`StudioSettings` (same prefix)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings


class AccountSettings(BaseSettings):
    """``WARMPOOL_STUDIO_OIDC_*`` (auth mode ``oidc``) and ``WARMPOOL_STUDIO_SPEND_*``."""

    studio_oidc_issuer: str | None = Field(
        None,
        description="Auth mode oidc: the provider's issuer URL (its discovery document is "
        "<issuer>/.well-known/openid-configuration), e.g. https://accounts.google.com.",
    )
    studio_oidc_client_id: str | None = Field(None, description="The studio's OIDC client id.")
    studio_oidc_client_secret: SecretStr | None = Field(
        None,
        description="The client secret (client_secret_basic); unset = a public client "
        "(PKCE alone).",
    )
    studio_oidc_scopes: str = Field(
        "openid email profile", description="Scopes requested (space-separated)."
    )
    studio_oidc_redirect_url: str | None = Field(
        None,
        description="The redirect URI registered at the provider; unset = "
        "<the studio's outside URL>/auth/callback.",
    )
    studio_oidc_post_logout_url: str | None = Field(
        None,
        description="Where the provider sends the browser after signing out there "
        "(post_logout_redirect_uri, registered at the provider); unset = the studio's front "
        "page, <the origin of the redirect URI>/.",
    )
    studio_oidc_user_claim: str = Field(
        "email", description="ID token claim naming the studio user (unique per account)."
    )
    studio_oidc_groups_claim: str = Field(
        "groups",
        description="ID token claim listing the user's groups; members of "
        "WARMPOOL_STUDIO_ADMIN_GROUP are admins.",
    )
    studio_oidc_login_seconds: int = Field(
        600, ge=30, description="Time a sign-in at the provider may take, seconds."
    )
    studio_spend_daily_limit: float | None = Field(
        None, ge=0, description="Default dollars a user may spend per UTC day; unset = none."
    )
    studio_spend_monthly_limit: float | None = Field(
        None, ge=0, description="Default dollars a user may spend per UTC month; unset = none."
    )
    studio_payments: bool = Field(
        False,
        description="Prepaid credits through Stripe: generations spend credits (402 without "
        "enough); needs the WARMPOOL_STUDIO_STRIPE_* keys.",
    )
    studio_stripe_secret_key: SecretStr | None = Field(
        None, description="Stripe secret key (sk_live_… / sk_test_…)."
    )
    studio_stripe_publishable_key: str | None = Field(
        None, description="Stripe publishable key (pk_…), for the Payment Element."
    )
    studio_stripe_webhook_secret: SecretStr | None = Field(
        None,
        description="Signing secret of the webhook endpoint <studio>/payments/webhook (whsec_…).",
    )
    studio_stripe_api_base: str | None = Field(
        None, description="Stripe API base URL; unset = Stripe's (tests: a localstripe URL)."
    )
    studio_stripe_js_url: str = Field(
        "https://js.stripe.com/v3/", description="Stripe.js, loaded by the credits page."
    )
    studio_stripe_flow: Literal["payment-element", "card-token"] = Field(
        "payment-element",
        description="How the credits page pays: payment-element (Stripe's Payment Element, "
        "confirmed by Stripe.js: real Stripe) or card-token (a Card Element's token, the "
        "PaymentIntent confirmed by the studio: localstripe, whose Stripe.js has no Payment "
        "Element).",
    )
    studio_credit_packs: list[float] = Field(
        default_factory=lambda: [5.0, 20.0, 50.0],
        description="Credit packs offered, dollars (each one a PaymentIntent of that amount).",
    )
    studio_credit_markup: float = Field(
        1.25, ge=1.0, description="A generation costs its GPU cost times this, in credits."
    )
    studio_currency: str = Field("usd", min_length=3, max_length=3, description="ISO currency.")

    @model_validator(mode="after")
    def _payments_need_keys(self) -> AccountSettings:
        if self.studio_payments and not (
            self.studio_stripe_secret_key and self.studio_stripe_webhook_secret
        ):
            raise ValueError(
                "WARMPOOL_STUDIO_PAYMENTS needs WARMPOOL_STUDIO_STRIPE_SECRET_KEY and "
                "WARMPOOL_STUDIO_STRIPE_WEBHOOK_SECRET"
            )
        return self
