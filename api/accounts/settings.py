"""Settings of accounts and spending limits, part of :class:`StudioSettings` (same prefix)."""

from __future__ import annotations

from pydantic import Field, SecretStr
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
