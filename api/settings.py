"""Studio settings: environment variables with the prefix ``WARMPOOL_``.

Studio-only settings are spelled ``WARMPOOL_STUDIO_*``; ``WARMPOOL_ARTIFACTS_URL``
is shared with the operator on purpose (both must point at the same store).
:class:`AccountSettings` holds the accounts' and spending limits' part (same prefix).
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

AuthMode = Literal["none", "token", "proxy", "oidc"]
ProxyHeaders = Literal["X-Forwarded", "X-Auth-Request"]


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


class StudioSettings(AccountSettings):
    """Everything the studio reads from its environment."""

    # extra="ignore", not the house "forbid": the operator and the studio share the
    # WARMPOOL_ prefix and are often given one environment (the dev stack, a shared
    # ConfigMap), so operator variables such as WARMPOOL_VASTAI_API_KEY must not make
    # the studio refuse to start. Studio-only names carry the STUDIO_ infix instead.
    model_config = SettingsConfigDict(env_prefix="WARMPOOL_", extra="ignore")

    artifacts_url: str = Field(
        "file://.warmpool/artifacts",
        description="Artifact store shared with the operator: file:///dir or s3://bucket/prefix.",
    )
    kubeconfig: str | None = Field(
        None,
        description="Path of a kubeconfig; when unset: the in-cluster service account, else"
        " $KUBECONFIG (its files merged), else ~/.kube/config.",
    )
    studio_namespace: str = Field(
        "default", description="Namespace of the pools, jobs and muses the studio manages."
    )
    studio_auth: AuthMode = Field(
        "token",
        description="token (Secret of tokens, the default), proxy, oidc (accounts through "
        "an OpenID Connect provider: WARMPOOL_STUDIO_OIDC_*), or none (dev only: one "
        "local user; must be chosen explicitly).",
    )
    studio_local_user: str = Field(
        "local", min_length=1, description="The user name in auth mode none (an admin)."
    )
    studio_token_secret: str = Field(
        "warmpool-studio-tokens",
        description="Secret (in studio_namespace) whose data maps user name → bearer token.",
    )
    studio_token_cache_seconds: float = Field(
        30.0, ge=0, description="Seconds the token Secret is cached, seconds."
    )
    studio_proxy_cidrs: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Addresses of the trusted proxies (CIDRs): the authenticating proxy "
        "of proxy mode, and the ingress whose X-Forwarded-Proto/-For are believed.",
    )
    studio_proxy_headers: ProxyHeaders = Field(
        "X-Forwarded",
        description="The one header family naming the user in proxy mode: X-Forwarded "
        "(<family>-User, <family>-Groups; oauth2-proxy as a reverse proxy) or X-Auth-Request "
        "(oauth2-proxy behind nginx auth_request). A request carrying the other family is "
        "refused.",
    )
    studio_proxy_jwks_url: str | None = Field(
        None,
        description="Proxy mode: the issuer's JWKS URL. When set, every request must carry "
        "the proxy's signed ID token (Authorization: Bearer, or X-Forwarded-Access-Token) "
        "and the user comes from it.",
    )
    studio_proxy_jwt_issuer: str | None = Field(None, description="Required `iss` of the token.")
    studio_proxy_jwt_audience: str | None = Field(
        None, description="Required `aud` of the token (the OIDC client id)."
    )
    studio_proxy_jwt_user_claim: str = Field("email", description="Claim naming the user.")
    studio_proxy_jwt_groups_claim: str = Field("groups", description="Claim listing groups.")
    studio_secure_cookies: bool | None = Field(
        None,
        description="Secure session cookies: unset = when the outside scheme is https "
        "(the request's, or X-Forwarded-Proto from a trusted proxy).",
    )
    studio_session_seconds: int = Field(
        12 * 3600, ge=60, description="Lifetime of a sign-in session (the cookie), seconds."
    )
    studio_signin_failures_per_minute: int = Field(
        10, ge=1, description="Failed sign-ins per client and per user name per minute (429)."
    )
    studio_min_token_length: int = Field(
        32, ge=16, description="Shorter tokens in the Secret are refused (at start: fatal)."
    )
    studio_body_max_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest request body except uploads, bytes."
    )
    studio_max_image_pixels: int = Field(
        25_000_000, ge=1_000_000, description="Largest image (width × height) decoded, pixels."
    )
    studio_admin_group: str = Field(
        "warmpool-admins", description="Members of this group see and manage everything."
    )
    studio_admins: list[str] = Field(
        default_factory=list, description="User names that are admins in every auth mode."
    )
    studio_max_queued_jobs: int = Field(
        10, ge=1, description="Unfinished jobs one user may have at once."
    )
    studio_requests_per_minute: int = Field(
        120, ge=1, description="API requests per user per minute (429 beyond)."
    )
    studio_upload_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest reference image upload, bytes."
    )
    studio_models: list[str] = Field(
        default_factory=list,
        description="Checkpoints accepted in addition to the pool template's models.",
    )
    studio_pools: list[str] = Field(
        default_factory=list, description="Pools offered to users; empty = every pool."
    )
    studio_blocklist: list[str] | None = Field(
        None,
        description="Prompt blocklist terms (whole words, case-insensitive); unset = the "
        "built-in list of terms that indicate a person under 18.",
    )
    studio_fallback_price_per_hour: float = Field(
        0.5, ge=0, description="$/hour used for estimates when a pool has no price yet."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as text or JSON (shared with the operator: WARMPOOL_LOG_FORMAT).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Python logging level of the studio (WARMPOOL_LOG_LEVEL, shared)."
    )
    studio_thumbnail_size: int = Field(
        384, ge=32, le=2048, description="Longest side of gallery thumbnails, pixels."
    )
    studio_page_size: int = Field(24, ge=1, le=500, description="Default items per page of lists.")
    # ---- records (audit trail, usage ledger): api/records/
    studio_records_url: SecretStr = Field(
        SecretStr("sqlite+aiosqlite:///.warmpool/records.db"),
        description="SQLAlchemy URL of the records database: sqlite+aiosqlite:///file (one "
        "replica) or postgresql+asyncpg://user:password@host/db. Secret: it may carry a password.",
    )
    studio_records_retention_days: int = Field(
        90, ge=1, description="Audit records and usage rows older than this are removed, days."
    )
    studio_records_cleanup_seconds: float = Field(
        3600.0, gt=0, description="Seconds between retention clean-ups."
    )
    studio_records_fingerprint_key: SecretStr | None = Field(
        None,
        description="HMAC key of token fingerprints in the audit; unset = a random key kept "
        "in the records database.",
    )
    studio_records_ingest_events: bool = Field(
        True, description="Copy the operator's money Events (rent, release) into the audit."
    )

    # ---- the gallery: share links and retention (api/shares.py, api/gallery_ops.py)
    studio_share_secret: SecretStr | None = Field(
        None,
        description="Key signing share links; unset = a random key kept in the records "
        "database (every replica shares it). Changing it ends every link.",
    )
    studio_share_max_days: int = Field(
        30, ge=1, le=365, description="Longest lifetime of a share link, days."
    )
    studio_gallery_retention_days: int | None = Field(
        None,
        ge=1,
        description="Outputs older than this are deleted unless favourited or in an album, "
        "days; unset = kept forever.",
    )
    studio_boot_estimate_seconds: float = Field(
        240.0, ge=0, description="Expected wait to rent and boot a machine (estimates), seconds."
    )
    studio_gallery_cleanup_seconds: float = Field(
        3600.0, gt=0, description="Seconds between gallery retention passes."
    )

    @field_validator("studio_proxy_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @model_validator(mode="after")
    def _jwt_needs_issuer_and_audience(self) -> StudioSettings:
        if self.studio_proxy_jwks_url and not (
            self.studio_proxy_jwt_issuer and self.studio_proxy_jwt_audience
        ):
            raise ValueError(
                "WARMPOOL_STUDIO_PROXY_JWKS_URL needs WARMPOOL_STUDIO_PROXY_JWT_ISSUER and "
                "WARMPOOL_STUDIO_PROXY_JWT_AUDIENCE"
            )
        return self

    @model_validator(mode="after")
    def _oidc_needs_issuer_and_client(self) -> StudioSettings:
        if self.studio_auth == "oidc" and not (
            self.studio_oidc_issuer and self.studio_oidc_client_id
        ):
            raise ValueError(
                "WARMPOOL_STUDIO_AUTH=oidc needs WARMPOOL_STUDIO_OIDC_ISSUER and "
                "WARMPOOL_STUDIO_OIDC_CLIENT_ID"
            )
        return self
