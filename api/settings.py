"""Studio settings: environment variables with the prefix ``WARMPOOL_``.

Studio-only settings are spelled ``WARMPOOL_STUDIO_*``; ``WARMPOOL_ARTIFACTS_URL``
is shared with the operator on purpose (both must point at the same store).
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

AuthMode = Literal["none", "token", "proxy"]


class StudioSettings(BaseSettings):
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
        "none", description="none (dev: one local user), token (Secret of tokens) or proxy."
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
        description="Addresses of the trusted authenticating proxy (CIDRs).",
    )
    studio_proxy_user_headers: list[str] = Field(
        default_factory=lambda: ["X-Auth-Request-User", "X-Forwarded-User"],
        description="Headers naming the user, first present wins (oauth2-proxy style).",
    )
    studio_proxy_groups_header: str = Field(
        "X-Auth-Request-Groups", description="Header with the user's groups, comma-separated."
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

    @field_validator("studio_proxy_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value
