"""Wire shapes of the admin console's API (camelCase on the wire)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ConditionOut(Wire):
    type: str
    status: str
    reason: str = ""
    message: str = ""


class PoolRow(Wire):
    name: str
    desired: int
    max_replicas: int | None
    replicas: int
    ready: int
    queued: int
    running: int
    paused: bool
    price_per_hour: float
    spend_today: float
    max_hourly_spend: float | None
    max_daily_spend: float | None
    conditions: list[ConditionOut]
    last_admin: str = ""
    last_admin_action: str = ""


class StepOut(Wire):
    step: str
    at: str | None
    seconds: float | None = Field(description="Seconds since the previous step.")


class InstanceRow(Wire):
    name: str
    pool: str
    phase: str
    gpu: str
    price_per_hour: float
    age_seconds: float | None
    contract: int | None
    last_probe: str
    status_message: str
    cost: float
    steps: list[StepOut]


class Fleet(Wire):
    pools: list[PoolRow]
    instances: list[InstanceRow]
    at: str


class ScaleRequest(Wire):
    replicas: int = Field(ge=0, le=500, description="Ready instances kept warm.")


class PauseRequest(Wire):
    paused: bool = Field(description="True: safe mode (no new rentals, jobs wait).")


class PrewarmRequest(Wire):
    count: int = Field(1, ge=1, le=50, description="Extra warm instances to rent now.")


class BudgetRequest(Wire):
    max_hourly_spend: float | None = Field(None, ge=0, description="$/hour ceiling; null = none.")
    max_daily_spend: float | None = Field(None, ge=0, description="$/day ceiling; null = none.")
    on_exceeded: Literal["Block", "Release"] | None = Field(
        None,
        description="At the daily cap: Release (idle instances now, busy ones after their "
        "job) or Block (only new rentals); unset keeps the pool's.",
    )


class ActionOut(Wire):
    action: str
    object: str
    before: dict[str, Any]
    after: dict[str, Any]


class AuditRow(Wire):
    id: int
    at: str
    actor: str
    action: str
    object_kind: str
    object_name: str
    address: str
    outcome: str
    detail: dict[str, Any]
    hash: str
    prev_hash: str


class AuditPage(Wire):
    items: list[AuditRow]
    total: int
    offset: int
    limit: int
    next_offset: int | None


class VerifyOut(Wire):
    ok: bool
    checked: int
    head: str
    anchored: bool
    problem: str
    record_id: int | None


class SpendRow(Wire):
    day: str
    owner: str
    pool: str
    jobs: int
    seconds: float
    cost: float


class UsageOut(Wire):
    since: str
    until: str
    rows: list[SpendRow]
    total_cost: float
