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
