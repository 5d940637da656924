"""GpuPool: a warm pool of rented Vast.ai machines running ComfyUI.

``spec`` is intent (how many ready machines, which offers, budget, policies);
``status`` is observation. The operator never writes ``spec.replicas``: it belongs
to people and to KEDA/HPA through the scale subresource.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from warmpool.crds.checkpoint import CHECKPOINT_RULES, CheckpointSpec, checkpoint_of
from warmpool.crds.common import CamelModel, Condition, Duration, ObjectMeta, with_rules
from warmpool.crds.stylemodel import STYLE_RULES, StyleModelSpec
from warmpool.crds.videofamily import FAMILY_RULES, VideoFamilySpec

DEFAULT_IMAGE = "vastai/comfyui:latest"

DEFAULT_TERMINATE_PATTERNS = [
    "no space left on device",
    "error response from daemon",
    "failed to pull image",
    "manifest unknown",
    "pull access denied",
    "unexpected eof",
    "oci runtime create failed",
    "exec format error",
]


class OfferSpec(CamelModel):
    """Filters on Vast.ai offers. Empty lists mean "any"."""

    gpu_names: list[str] = Field(
        default_factory=list,
        description='Acceptable GPU models as Vast.ai names them ("RTX 4090"); empty = any.',
        max_length=32,
    )
    min_gpu_ram_gb: float | None = Field(None, ge=0, description="Minimum memory per GPU, GB.")
    num_gpus: int = Field(1, ge=1, le=16, description="GPUs per machine.")
    min_reliability: float = Field(0.98, ge=0, le=1, description="Minimum host reliability 0..1.")
    min_direct_ports: int = Field(
        1, ge=0, le=64, description="Minimum directly mapped ports (ComfyUI needs one)."
    )
    max_price_per_hour: float | None = Field(
        None, gt=0, description="Maximum $/hour of one rental (dph_total, storage included)."
    )
    min_download_mbps: float | None = Field(
        None, ge=0, description="Minimum measured download bandwidth, Mbit/s."
    )
    verified_only: bool = Field(True, description="Only machines verified by Vast.ai.")
    countries: list[str] = Field(
        default_factory=list,
        description="Allowed two-letter country codes; empty = any.",
        max_length=250,
    )
    excluded_countries: list[str] = Field(
        default_factory=list, description="Refused two-letter country codes.", max_length=250
    )
    interruptible: bool = Field(
        False, description="Rent as interruptible (bid) instead of on-demand."
    )
    bid_price: float | None = Field(
        None, gt=0, le=128, description="Bid $/hour for interruptible rentals."
    )

    @model_validator(mode="after")
    def _bid_only_when_interruptible(self) -> OfferSpec:
        if self.bid_price is not None and not self.interruptible:
            raise ValueError("offer.bidPrice is only for interruptible rentals")
        return self


#: Declared model bytes must fit ``diskGb`` with this margin: the image, ComfyUI and the
#: partial file of a download in flight need room too (see :data:`_TEMPLATE_RULES`).
MODEL_DISK_RESERVE_GB = 10
MODEL_DISK_MARGIN_PERCENT = 10
#: One model file at most (1 TiB): keeps the CEL sum far from int64 overflow.
MAX_MODEL_BYTES = 1 << 40


class SecretKeyRef(CamelModel):
    """A key of a Secret in the pool's namespace."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Secret name (same namespace as the pool).",
    )
    key: str = Field(
        "token",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key inside the Secret's data.",
    )


class ModelSpec(CamelModel):
    """A model file that must be present before an instance counts as ready."""

    folder: str = Field(
        description='ComfyUI model folder, e.g. "checkpoints", "loras", "vae".',
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$",
    )
    file: str = Field(
        description="File name inside the folder.",
        min_length=1,
        max_length=255,
        pattern=r"^[^/\\\x00]+$",
    )
    url: str | None = Field(
        None,
        max_length=2048,
        pattern=r"^https?://",
        description="Where the machine downloads it from (http or https).",
    )
    sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="Expected SHA-256 (64 lowercase hex digits); checked after download.",
    )
    size_bytes: int | None = Field(
        None,
        ge=1,
        le=MAX_MODEL_BYTES,
        description="Expected size in bytes; checked after download and against diskGb.",
    )
    token_secret: SecretKeyRef | None = Field(
        None,
        description=(
            "Secret holding a bearer token for the URL (Hugging Face, Civitai); sent as "
            "`Authorization: Bearer` to the URL's host only, never to a redirect's."
        ),
    )

    @model_validator(mode="after")
    def _file_is_not_a_dot_name(self) -> ModelSpec:
        if self.file in (".", ".."):
            raise ValueError("models[].file must be a file name")
        return self


def _declared_bytes_cel() -> str:
    return "self.models.map(m, has(m.sizeBytes) ? m.sizeBytes : 0).sum()"


_TEMPLATE_RULES = [
    {
        "rule": (
            "!has(self.models) || "
            f"{_declared_bytes_cel()} * {100 + MODEL_DISK_MARGIN_PERCENT} / 100"
            f" + {MODEL_DISK_RESERVE_GB} * 1000000000 <= self.diskGb * 1000000000"
            f" || {_declared_bytes_cel()} == 0"
        ),
        "message": (
            f"models[].sizeBytes plus {MODEL_DISK_MARGIN_PERCENT}% and {MODEL_DISK_RESERVE_GB} GB "
            "for the image must fit diskGb"
        ),
        "fieldPath": ".diskGb",
    },
]


def required_disk_gb(models: list[ModelSpec]) -> float:
    """The disk the declared model sizes need, margin and image reserve included (GB)."""
    declared = sum(m.size_bytes or 0 for m in models)
    if declared == 0:
        return 0.0
    return declared * (100 + MODEL_DISK_MARGIN_PERCENT) / 100 / 1e9 + MODEL_DISK_RESERVE_GB


class TemplateSpec(CamelModel):
    """What runs on each rented machine."""

    model_config = with_rules(*FAMILY_RULES, *STYLE_RULES, *CHECKPOINT_RULES, *_TEMPLATE_RULES)

    image: str = Field(
        DEFAULT_IMAGE, min_length=1, max_length=1024, description="Docker image reference."
    )
    disk_gb: int = Field(250, ge=8, le=8192, description="Disk allocated per rental, GB.")
    comfy_port: int = Field(8188, ge=1, le=65535, description="ComfyUI port inside the container.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment variables for the container."
    )
    onstart: str | None = Field(
        None, max_length=4000, description="Shell script run after the container starts."
    )
    models: list[ModelSpec] = Field(
        default_factory=list,
        max_length=64,
        description="Models that must be present before an instance counts as ready.",
    )
    video_families: list[VideoFamilySpec] = Field(
        default_factory=list,
        max_length=8,
        description="Video models the machines hold (their files are also in models).",
    )
    style_models: list[StyleModelSpec] = Field(
        default_factory=list,
        max_length=4,
        description=(
            "Reference conditioning the machines can do (Flux Redux): a muse's reference "
            "images condition jobs on these checkpoints (the files are also in models)."
        ),
    )
    checkpoints: list[CheckpointSpec] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "How image checkpoints are run (sdxl, flux-dev, flux-schnell), all-in-one or split "
            "Flux files; an undeclared checkpoint is run as sdxl (the files are also in models)."
        ),
    )

    model_stall_timeout: Duration = Field(
        "2m",
        description=(
            "A model download that receives no byte for this long fails as "
            "ModelDownloadStalled (the instance is replaced, its host cooled down)."
        ),
    )

    @model_validator(mode="after")
    def _families_are_models(self) -> TemplateSpec:
        present = {(m.folder, m.file) for m in self.models}
        names = [f.name for f in self.video_families]
        if len(set(names)) != len(names):
            raise ValueError("video family names must be unique")
        for family in self.video_families:
            for folder, file in family.files():
                if (folder, file) not in present:
                    raise ValueError(
                        f"video family {family.name!r}: {folder}/{file} is not in "
                        "template.models; every file of a video family must be listed there"
                    )
        declared = {c.name: c for c in self.checkpoints}
        if len(declared) != len(self.checkpoints):
            raise ValueError("checkpoint names must be unique")
        for checkpoint in self.checkpoints:
            for folder, file in checkpoint.files():
                if (folder, file) not in present:
                    raise ValueError(
                        f"checkpoint {checkpoint.name!r}: {folder}/{file} is not in "
                        "template.models; every file of a checkpoint must be listed there"
                    )
        for style in self.style_models:
            for c in style.checkpoints:
                if c in declared and declared[c].architecture == "sdxl":
                    raise ValueError(
                        f"style model {style.style_model!r}: checkpoint {c!r} is declared "
                        "sdxl; a Flux Redux style model conditions Flux checkpoints"
                    )
            for folder, file in style.files():
                if folder == "checkpoints" and file in declared:
                    continue  # a declared checkpoint's own files are checked above
                if (folder, file) not in present:
                    raise ValueError(
                        f"style model {style.style_model!r}: {folder}/{file} is not in "
                        "template.models; every file of a style model must be listed there"
                    )
        return self

    def video_family(self, name: str | None) -> VideoFamilySpec | None:
        """The family called ``name``, or the first one when ``name`` is None."""
        if name is None:
            return self.video_families[0] if self.video_families else None
        return next((f for f in self.video_families if f.name == name), None)

    def style_model(self, checkpoint: str) -> StyleModelSpec | None:
        """The first style model that conditions ``checkpoint``, or None."""
        return next((s for s in self.style_models if checkpoint in s.checkpoints), None)

    def image_checkpoints(self) -> list[str]:
        """What image jobs may name in ``spec.model``: the files in models/checkpoints, then
        the declared split checkpoints."""
        names = [m.file for m in self.models if m.folder == "checkpoints"]
        return names + [c.name for c in self.checkpoints if c.name not in names]

    def checkpoint(self, name: str) -> CheckpointSpec:
        """How checkpoint ``name`` is run (:func:`warmpool.crds.checkpoint.checkpoint_of`)."""
        redux = {c for s in self.style_models for c in s.checkpoints}
        return checkpoint_of(name, self.checkpoints, redux)

    @model_validator(mode="after")
    def _models_fit_the_disk(self) -> TemplateSpec:
        need = required_disk_gb(self.models)
        if need > self.disk_gb:
            raise ValueError(
                f"models[].sizeBytes plus {MODEL_DISK_MARGIN_PERCENT}% and "
                f"{MODEL_DISK_RESERVE_GB} GB for the image must fit diskGb: need {need:.1f} GB, "
                f"diskGb is {self.disk_gb}"
            )
        return self

    def hash(self) -> str:
        """A short hash of the template: instances rented with another one are drifted."""
        data = self.model_dump(mode="json", by_alias=True)
        # Fields added after the first release count only when set, so that a template
        # that does not use them keeps its hash (no drift, no replacement on upgrade).
        for key in ("videoFamilies", "styleModels"):
            if not data.get(key):
                data.pop(key, None)
        # How checkpoints are run changes the graphs only, not the machine (their files
        # are in models): declaring one replaces no instance.
        data.pop("checkpoints", None)
        if data.get("modelStallTimeout") == "2m":
            data.pop("modelStallTimeout", None)
        for model in data.get("models", []):
            for key in ("sha256", "sizeBytes", "tokenSecret"):
                if model.get(key) is None:
                    model.pop(key, None)
        return _hash(data)


def _hash(data: Any) -> str:
    import hashlib
    import json

    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class CanarySpec(CamelModel):
    """A small generation that must complete before an instance counts as ready."""

    enabled: bool = Field(True, description="Run the canary (warms the model into GPU memory).")
    timeout: Duration = Field("3m", description="Deadline of the canary generation.")
    steps: int = Field(4, ge=1, le=50, description="Sampler steps of the canary.")
    size: int = Field(256, ge=64, le=2048, multiple_of=8, description="Canary width and height.")


class ReadinessSpec(CamelModel):
    """How an instance becomes ready."""

    timeout: Duration = Field(
        "10m", description="From running to ready; past it the instance is replaced."
    )
    initial_backoff: Duration = Field("2s", description="First delay between readiness probes.")
    max_backoff: Duration = Field("30s", description="Longest delay between readiness probes.")
    canary: CanarySpec = Field(default_factory=CanarySpec, description="The canary generation.")


class FailurePolicySpec(CamelModel):
    """When to give up on an instance, and how to avoid failing again."""

    terminate_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TERMINATE_PATTERNS),
        max_length=64,
        description="Case-insensitive substrings of Vast.ai status_msg that mean: terminate now.",
    )
    loading_timeout: Duration = Field(
        "20m", description="Longest time in created/loading before the rental is replaced."
    )
    host_cooldown: Duration = Field(
        "1h", description="A machine that failed is not rented again for this long."
    )
    max_consecutive_failures: int = Field(
        3, ge=1, le=100, description="Failed rentals in a row after which the pool backs off."
    )
    unreachable_probes: int = Field(
        3, ge=1, le=100, description="Failed probes in a row after which a ready instance is lost."
    )


#: What a pool does at its daily cap (``spec.budget.onExceeded``).
OnExceeded = Literal["Block", "Release"]


class BudgetSpec(CamelModel):
    """Spending limits in dollars; unset means unlimited."""

    model_config = with_rules(
        {
            "rule": "!has(self.maxDailySpend) || !has(self.maxHourlySpend) "
            "|| self.maxDailySpend >= self.maxHourlySpend",
            "message": "maxDailySpend must be >= maxHourlySpend",
            "fieldPath": ".maxDailySpend",
        }
    )

    max_hourly_spend: float | None = Field(
        None, ge=0, description="Ceiling on the sum of $/hour of all rentals of the pool."
    )
    max_daily_spend: float | None = Field(
        None, ge=0, description="Ceiling on dollars spent per UTC day."
    )
    on_exceeded: OnExceeded = Field(
        "Release",
        description=(
            "At maxDailySpend: Release (default) releases idle instances at once and busy "
            "ones after their current job; Block only stops new rentals while running ones "
            "keep billing. Either way nothing rents until the UTC day turns."
        ),
    )

    @model_validator(mode="after")
    def _daily_covers_hourly(self) -> BudgetSpec:
        if (
            self.max_daily_spend is not None
            and self.max_hourly_spend is not None
            and self.max_daily_spend < self.max_hourly_spend
        ):
            raise ValueError("maxDailySpend must be >= maxHourlySpend")
        return self


class JobsSpec(CamelModel):
    """How generation jobs use the pool's instances."""

    concurrency_per_instance: int = Field(1, ge=1, le=16, description="Jobs at once per instance.")
    lease_seconds: int = Field(
        600, ge=10, le=86400, description="Lease a job holds on its instance; renewed while alive."
    )
    stall_timeout: Duration = Field(
        "2m", description="No progress for this long → the job moves to another instance."
    )
    max_attempts: int = Field(3, ge=1, le=20, description="Attempts before a job fails.")
    ttl: Duration | None = Field(
        None, description="Finished jobs are deleted after this long (unset: kept)."
    )


class WarmupSpec(CamelModel):
    """Predictive warm-up: keep instances ready while jobs keep arriving.

    While at least ``minArrivalsPerHour`` jobs arrived per hour over the last
    ``window``, the pool keeps ``replicas`` of this object ready (on top of nothing:
    the larger of it and the pool's ``replicas``); when arrivals slow down, the extra
    instances are released after ``idleTimeout`` like any other demand.

    With ``coverage`` above 0 (default 0.95), the pool also learns the shape of the
    day: it counts arrivals per UTC hour over the last ``days`` days and, once a whole
    day is known and while jobs came in the last 24 hours, keeps ``replicas`` ready
    during the busiest hours that together held ``coverage`` of them (from ``lead``
    before each) instead of following the last ``window``.
    """

    replicas: int = Field(
        1, ge=0, le=500, description="Instances kept ready while jobs keep arriving."
    )
    min_arrivals_per_hour: float = Field(
        1.0, ge=0, description="Arrival rate (jobs/hour over the window) that keeps them warm."
    )
    window: Duration = Field("1h", description="How far back arrivals are counted.")
    coverage: float = Field(
        0.95,
        ge=0,
        le=1,
        description=(
            "Learned warm-up: keep warm the busiest hours of the day (UTC) that held this "
            "share of the arrivals over the last `days` (0: the rate rule only)."
        ),
    )
    days: int = Field(7, ge=1, le=28, description="Days of arrivals the learned warm-up keeps.")
    lead: Duration = Field("30m", description="Warm up this long before a busy hour begins.")


class ColdSpec(CamelModel):
    """The cold tier: stopped instances that keep their disk and resume in about a minute.

    An instance above the warm floor that idles past ``idleTimeout`` is *stopped*
    (Vast.ai keeps its disk — image and models — and bills storage only: the offer's
    ``storage_cost`` $/GB/month × ``template.diskGb``) instead of destroyed, while fewer
    than ``replicas`` are stopped, its machine is healthy and its template is current.
    On demand the pool starts its stopped instances before it rents fresh ones.
    """

    replicas: int = Field(
        0, ge=0, le=100, description="Stopped instances kept at most (0: no cold tier)."
    )
    max_age: Duration = Field(
        "24h", description="A stopped instance is destroyed after this long stopped."
    )
    resume_timeout: Duration = Field(
        "3m",
        description=(
            "A start that is not Ready within this long is destroyed and a fresh machine "
            "rented (a start whose GPU was taken is given up after 30 s)."
        ),
    )
    idle_timeout: Duration = Field(
        "1m",
        description=(
            "While the tier has room, an idle instance above the warm floor is stopped after "
            "this long instead of the pool's idleTimeout: a start undoes a stop in about a "
            "minute (the pool's idleTimeout or longer: the pool's applies)."
        ),
    )


_POOL_RULES = [
    {
        "rule": "!has(self.maxReplicas) || self.maxReplicas >= self.replicas",
        "message": "maxReplicas must be >= replicas",
        "fieldPath": ".maxReplicas",
    },
    {
        "rule": "!has(self.offer) || !has(self.offer.bidPrice) || self.offer.interruptible",
        "message": "offer.bidPrice is only for interruptible rentals",
        "fieldPath": ".offer.bidPrice",
    },
]


class GpuPoolSpec(CamelModel):
    """Desired state of a pool."""

    model_config = with_rules(*_POOL_RULES)

    replicas: int = Field(1, ge=0, le=500, description="Ready instances kept warm at all times.")
    max_replicas: int | None = Field(
        None, ge=0, le=500, description="Ceiling for demand-driven scale-up (default: replicas)."
    )
    paused: bool = Field(
        False, description="Safe mode: terminate every instance and rent nothing while true."
    )
    idle_timeout: Duration = Field(
        "4m",
        description=(
            "An instance above the warm floor with no job for this long is released "
            "(default about one boot: idling longer costs more than renting again)."
        ),
    )
    offer: OfferSpec = Field(default_factory=OfferSpec, description="Vast.ai offer filters.")
    template: TemplateSpec = Field(default_factory=TemplateSpec, description="The machine image.")
    readiness: ReadinessSpec = Field(default_factory=ReadinessSpec, description="Readiness.")
    failure_policy: FailurePolicySpec = Field(
        default_factory=FailurePolicySpec, description="Failure handling."
    )
    budget: BudgetSpec = Field(default_factory=BudgetSpec, description="Spending limits.")
    hedge: int = Field(
        1,
        ge=0,
        le=5,
        description=(
            "On a cold start (no instance Ready), rent this many extra candidates at once "
            "and keep the first that becomes ready."
        ),
    )
    jobs: JobsSpec = Field(default_factory=JobsSpec, description="Job placement settings.")
    warmup: WarmupSpec | None = Field(
        None, description="Predictive warm-up from the recent job arrival rate (unset: off)."
    )
    cold: ColdSpec = Field(
        default_factory=ColdSpec,
        description="Cold tier: idle instances stopped (disk kept) instead of destroyed.",
    )

    @model_validator(mode="after")
    def _max_covers_replicas(self) -> GpuPoolSpec:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError("maxReplicas must be >= replicas")
        return self

    @property
    def ceiling(self) -> int:
        """The most instances demand may bring: ``maxReplicas`` or ``replicas``."""
        return max(self.replicas, self.max_replicas or 0)


class HostFailure(CamelModel):
    """One entry of the pool's per-host failure ledger."""

    machine_id: int = Field(description="Vast.ai machine id.")
    host_id: int | None = Field(None, description="Vast.ai host (account) id.")
    reason: str = Field(description="Why the rental failed (stable reason word).")
    message: str = Field("", description="Details.")
    time: str = Field(description="When (RFC 3339).")


class RentalOutcome(CamelModel):
    """A finished rental attempt, for the circuit breaker."""

    instance: str = Field(description="GpuInstance name.")
    ok: bool = Field(description="True when the rental became ready.")
    reason: str = Field("", description="Failure reason when not ok.")
    time: str = Field(description="When the outcome was known (RFC 3339).")


class UnavailableOffer(CamelModel):
    """An offer that was gone when we tried to rent it; skipped until ``until``."""

    offer_id: int = Field(description="Vast.ai offer id.")
    until: str = Field(description="Skip until (RFC 3339).")


class SpendStatus(CamelModel):
    """Money already spent on released rentals, per UTC day."""

    day: str = Field("", description="UTC day (YYYY-MM-DD) the closed amount belongs to.")
    closed: float = Field(0.0, description="Dollars of rentals released on that day.")


class ArrivalDay(CamelModel):
    """Jobs submitted to the pool per UTC hour of one day (learned warm-up)."""

    day: str = Field(description="UTC day (YYYY-MM-DD).")
    hours: list[int] = Field(
        min_length=24, max_length=24, description="Jobs submitted in each UTC hour 0..23."
    )


class ModelsUnavailable(CamelModel):
    """A model the pool's machines cannot download (a configuration error): renting stops
    until the spec changes (``generation``) or the Secret is fixed and the record cleared."""

    reason: str = Field(description="ModelAuthFailed, ModelNotFound or ModelTokenMissing.")
    message: str = Field("", description="The file and the HTTP status (never a token).")
    file: str = Field("", description="folder/file of the model.")
    http_status: int | None = Field(None, description="HTTP status of the download.")
    generation: int | None = Field(None, description="metadata.generation it was seen at.")
    time: str = Field("", description="When (RFC 3339).")


class GpuPoolStatus(CamelModel):
    """Observed state of a pool."""

    observed_generation: int | None = Field(None, description="Last metadata.generation seen.")
    replicas: int = Field(0, description="Instances that exist (any phase but Terminating).")
    ready_replicas: int = Field(0, description="Instances that are Ready.")
    cold_replicas: int = Field(
        0, description="Instances of the cold tier: Stopped (disk kept) or Resuming."
    )
    selector: str = Field("", description="Label selector of the pool's GpuInstances.")
    queued_jobs: int = Field(0, description="Jobs waiting for a slot.")
    running_jobs: int = Field(0, description="Jobs placed or running.")
    price_per_hour: float = Field(0.0, description="Sum of $/hour of current rentals.")
    spend_today: float = Field(0.0, description="Dollars spent this UTC day (estimate).")
    spend: SpendStatus = Field(default_factory=SpendStatus, description="Closed spend ledger.")
    host_failures: list[HostFailure] = Field(
        default_factory=list, description="Recent failures per machine (cool-down ledger)."
    )
    recent_rentals: list[RentalOutcome] = Field(
        default_factory=list, description="Recent rental outcomes (circuit breaker)."
    )
    unavailable_offers: list[UnavailableOffer] = Field(
        default_factory=list, description="Offers skipped for a while."
    )
    breaker_until: str | None = Field(
        None, description="No rentals before this time (circuit breaker open)."
    )
    arrivals: list[ArrivalDay] = Field(
        default_factory=list,
        description="Jobs submitted per UTC hour: today and the last warmup.days days.",
        max_length=29,
    )
    models_unavailable: ModelsUnavailable | None = Field(
        None, description="A model download failed for a configuration reason: no renting."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Conditions.")


class GpuPool(CamelModel):
    """A GpuPool object as read from the API server."""

    api_version: str = Field("warmpool.dev/v1alpha1", alias="apiVersion")
    kind: Literal["GpuPool"] = "GpuPool"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: GpuPoolSpec = Field(default_factory=GpuPoolSpec)
    status: GpuPoolStatus = Field(default_factory=GpuPoolStatus)

    @classmethod
    def from_body(cls, body: Any) -> GpuPool:
        """Parse a Kubernetes object (dict or Kopf body)."""
        return cls.model_validate(dict(body))
