"""Operator settings: environment variables with the prefix ``WARMPOOL_``."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import socket
from functools import cached_property
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from warmpool.operator import selectors as shards

MIB = 1024 * 1024
GIB = 1024 * MIB


class OperatorSettings(BaseSettings):
    """Everything the operator reads from its environment. Secrets are ``SecretStr``."""

    model_config = SettingsConfigDict(env_prefix="WARMPOOL_", extra="forbid")

    vastai_url: str = Field(
        "https://console.vast.ai",
        description="Base URL of the Vast.ai API (no path).",
    )
    vastai_api_key: SecretStr = Field(
        SecretStr(""),
        description="Vast.ai API key, sent as a Bearer header only.",
    )
    vastai_timeout: float = Field(15.0, gt=0, description="Per-request time-out, seconds.")
    vastai_deadline: float = Field(
        60.0, gt=0, description="Total time for one call including retries, seconds."
    )
    vastai_max_log_bytes: int = Field(
        4 * MIB, ge=1024,
        description="Bytes: the most read of one instance log (the machine writes it).",
    )  # fmt: skip
    inventory_refresh: float = Field(
        5.0, gt=0, description="Seconds one Vast.ai instance listing serves all pools."
    )
    artifacts_url: str = Field(
        "file://.warmpool/artifacts",
        description="Artifact store: file:///dir or s3://bucket/prefix.",
    )
    artifacts_s3_endpoint: str | None = Field(
        None,
        description="S3-compatible endpoint URL (MinIO, R2...); AWS when unset. "
        "Credentials come from the standard AWS_* environment variables only.",
    )
    artifacts_s3_region: str | None = Field(
        None, description="S3 region; AWS_REGION / AWS_DEFAULT_REGION or us-east-1 when unset."
    )
    reconcile_interval: float = Field(
        10.0, gt=0, description="Seconds between timer reconciles of each pool."
    )
    probe_interval: float = Field(
        2.0, gt=0, description="Seconds between steps of an instance on its way to Ready."
    )
    ready_probe_interval: float = Field(
        30.0,
        gt=0,
        description="Seconds between ComfyUI probes of a Ready instance that "
        "Vast.ai lists as running and whose last probe passed (any failure: every step).",
    )
    status_refresh: float = Field(
        300.0,
        gt=0,
        description="Seconds between status writes of a Ready instance whose "
        "observation did not change (its lastProbe time and cost move with the clock only: "
        "the status's lastProbe.time is at most this old while every probe passes; any other "
        "change is written at once). Also how long a pool's listing of its unchanged "
        "instances and its spendToday stand.",
    )
    offer_cache: float = Field(
        10.0, ge=0, description="Seconds one offer search serves a pool's rentals."
    )
    orphan_grace: float = Field(
        120.0, ge=0, description="Seconds before an unowned rental with our label is destroyed."
    )
    watch_timeout: float = Field(
        300.0, gt=0, description="Seconds a Kubernetes watch request stays open (server side)."
    )
    allowed_machine_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs of machine addresses contacted although private, loopback or "
        'link-local (JSON list, e.g. ["127.0.0.0/8"] for the simulators); empty in '
        "production: a rental reporting such a public_ipaddr is refused and replaced.",
    )
    comfy_timeout: float = Field(10.0, gt=0, description="ComfyUI per-request time-out, seconds.")
    queue_ahead: int = Field(
        1, ge=0, le=8,
        description="Jobs queued in an instance's ComfyUI behind its running ones (beyond "
        "the pool's concurrencyPerInstance), so the GPU never waits for the operator between "
        "two jobs; used only when no instance has a free slot. 0: none.",
    )  # fmt: skip
    queue_wait_max_seconds: float = Field(
        600.0, gt=0,
        description="Seconds a job's prompt may wait in its instance's ComfyUI queue (behind "
        "the running prompt) before it begins; past it the prompt is taken out of that queue "
        "and the job placed again. A job's spec.timeout counts from the prompt's start.",
    )  # fmt: skip
    queue_ahead_max_seconds: float = Field(
        60.0, ge=0,
        description="Seconds: no job is queued ahead on an instance whose placed jobs are "
        "expected to run longer than this in all (the workflow estimate on the reference "
        "GPU): behind a long video a job waits in the pool's queue (where it counts as "
        "demand) rather than in that instance's.",
    )  # fmt: skip
    comfy_allow_plain_http: bool = Field(
        False,
        description="Rent without a per-instance TLS certificate and talk plain HTTP to "
        "ComfyUI (token and prompts in clear text): only for images without a TLS proxy on a "
        "trusted network. By default every machine gets a pinned certificate and any "
        "http:// URL is refused before a byte (or the token) is sent.",
    )
    comfy_max_json_bytes: int = Field(
        8 * MIB, ge=64 * 1024,
        description="Bytes: the largest JSON answer accepted from a machine's ComfyUI "
        "(/prompt, /history, /queue, /object_info, /system_stats, the download report, "
        "a websocket frame); past it the answer is dropped and the host cooled down.",
    )  # fmt: skip
    comfy_max_image_bytes: int = Field(
        64 * MIB, ge=1024,
        description="Bytes: the largest image output accepted from a machine (checked in "
        "memory, so keep it modest).",
    )  # fmt: skip
    comfy_max_video_bytes: int = Field(
        2 * GIB, ge=1024,
        description="Bytes: the largest video output accepted from a machine (streamed to the "
        "artifact store, never held in memory).",
    )  # fmt: skip
    namespace: str | None = Field(
        None,
        description="Watch only this namespace, or these (comma-separated); cluster-wide "
        "when unset.",
    )
    pool_selector: str = Field(
        "",
        description="Label selector of the GpuPools this operator handles (their GpuInstances "
        "carry the pool's labels); a shard of the fleet by label. Empty: every pool.",
    )
    shard_name: str = Field(
        "",
        pattern=r"^([a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?)?$",
        description="Name of this shard (a DNS label) in the finalizer and annotations Kopf "
        "writes on the objects it handles, so that two label shards never remove each other's "
        "finalizer. Empty: derived from pool_selector (set it to keep the names when the "
        "selector is edited); no pool_selector: the unsharded names.",
    )
    health_port: int = Field(8080, description="Port of the liveness and /metrics endpoint.")
    health_fd: int | None = Field(
        None,
        ge=0,
        description="An inherited listening socket (file descriptor) to serve the health "
        "endpoint on instead of binding health_port: socket activation, as `warmpool-sim dev` "
        "uses it so that no other process can take the port between choosing and binding it.",
    )
    log_format: str = Field("text", pattern="^(text|json)$", description="text or json.")
    log_level: str = Field("INFO", description="Python logging level name.")
    peering: str | None = Field(
        None, description="Kopf peering object name; standalone when unset."
    )
    webhook_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of the validating admission webhook (HTTPS, Kopf's WebhookServer); "
        "no webhook server when unset. The chart's ValidatingWebhookConfiguration points at it.",
    )
    webhook_addr: str = Field("0.0.0.0", description="Address the admission webhook listens on.")
    webhook_cert_dir: str | None = Field(
        None,
        description="Folder holding the webhook's HTTPS certificate as a kubernetes.io/tls "
        "Secret mounts it: tls.crt (PEM chain) and tls.key (PEM private key).",
    )

    @model_validator(mode="after")
    def _webhook_certificate(self) -> OperatorSettings:
        if self.webhook_port is not None and not self.webhook_cert_dir:
            raise ValueError(
                "WARMPOOL_WEBHOOK_PORT needs WARMPOOL_WEBHOOK_CERT_DIR (tls.crt and tls.key): "
                "the API server only calls webhooks over HTTPS"
            )
        return self

    operator_daily_budget_usd: float | None = Field(
        None,
        ge=0,
        description="Operator-wide cap, dollars per UTC day, over every pool of every namespace "
        "this operator serves (unset: none). A namespace editor sets their own pools' budgets; "
        "this is the ceiling they cannot lift.",
    )
    operator_budget_on_exceeded: Literal["Block", "Release"] = Field(
        "Release",
        description="At the operator-wide cap: Release idle instances now and busy ones after "
        "their job, or Block new rentals only (as a pool's spec.budget.onExceeded).",
    )
    fleet_spend_refresh: float = Field(
        5.0, gt=0, description="Seconds one count of every pool's spend serves all pools."
    )

    balance_check_interval: float = Field(
        300.0,
        ge=0,
        description="Seconds between two looks at the Vast.ai account's credit "
        "(GET /users/current/) to reconcile it with the counted spend; 0: never.",
    )
    balance_drift_window: float = Field(
        3600.0, gt=0, description="Seconds over which the credit drop and the spend are compared."
    )
    balance_drift_threshold_usd: float = Field(
        5.0,
        ge=0,
        description="Dollars of difference (either way) between the credit drop and the counted "
        "spend over the window past which SpendReconciled turns False.",
    )

    @property
    def served_namespaces(self) -> list[str]:
        """The namespaces of :attr:`namespace`; empty: every namespace."""
        return [n.strip() for n in (self.namespace or "").split(",") if n.strip()]

    @property
    def list_namespaces(self) -> list[str | None]:
        """Where to list a kind: each served namespace, or ``[None]`` (every namespace)."""
        return [*self.served_namespaces] or [None]

    peering_lifetime: int = Field(
        60,
        gt=0,
        description="Seconds a replica's peering heartbeat stays valid: a standby "
        "takes over this long (plus a keep-alive) after the active replica dies.",
    )
    peering_priority: int | None = Field(
        None,
        ge=0,
        lt=2**31,
        description="This replica's peering priority: the live replica of the highest one "
        "works, the others stand by. Unset: a random one at every start (replicas must "
        "differ: Kopf pauses every replica that sees a peer of its own priority).",
    )
    pod_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{secrets.token_hex(4)}",
        validation_alias="POD_ID",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,252}$",
        description="This replica's name in the peering object and in the API server's "
        "audit log (its User-Agent): the pod's name (the chart sets POD_ID from "
        "metadata.name); a host name and a random suffix when unset.",
    )

    @field_validator("pool_selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        shards.parse_selector(value)  # a SelectorError (ValueError) names the requirement
        return value

    @property
    def shard_key(self) -> str:
        """The shard's name in Kopf's finalizer and annotations ("" unsharded by label)."""
        if self.shard_name or not self.pool_selector.strip():
            return self.shard_name
        return "s" + hashlib.sha256(self.pool_selector.strip().encode()).hexdigest()[:10]

    @cached_property
    def pool_requirements(self) -> tuple[shards.Requirement, ...]:
        """The parsed ``pool_selector``."""
        return shards.parse_selector(self.pool_selector)

    @field_validator("allowed_machine_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value
