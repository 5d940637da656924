"""GpuInstance: one Vast.ai rental, owned by its pool.

A finalizer destroys the rental before the object goes away, so deleting a
GpuInstance with kubectl terminates that machine now.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from warmpool.crds.common import CamelModel, Condition, ObjectMeta

Phase = Literal[
    "Pending",
    "Renting",
    "Provisioning",
    "Starting",
    "Ready",
    "Draining",
    "Terminating",
    "Failed",
    "Stopped",
    "Resuming",
]

#: Phases in which the rental exists or may exist on Vast.ai and costs money.
LIVE_PHASES: tuple[Phase, ...] = ("Renting", "Provisioning", "Starting", "Ready", "Draining")

#: The cold tier (``GpuPool.spec.cold``): ``Stopped`` — the rental exists, its GPU is
#: released and its disk kept and billed (storage only); ``Resuming`` — started again,
#: not Ready yet. Not in :data:`LIVE_PHASES`: a stopped instance holds no GPU, so its
#: machine may be rented again; its storage still counts in spend.
COLD_PHASES: tuple[Phase, ...] = ("Stopped", "Resuming")


class OfferRef(CamelModel):
    """The Vast.ai offer an instance was rented from."""

    id: int = Field(description="Offer (ask) id.")
    machine_id: int = Field(description="Machine id.")
    host_id: int | None = Field(None, description="Host (account) id.")
    gpu_name: str = Field("", description="GPU model.")
    num_gpus: int = Field(1, description="GPUs in the rental.")
    price_per_hour: float = Field(0.0, description="dph_total at search time, $/hour.")
    geolocation: str = Field("", description="Where the machine is.")


class GpuInstanceSpec(CamelModel):
    """What was decided when the instance was created."""

    pool: str = Field(min_length=1, description="Name of the owning GpuPool.")
    offer: OfferRef | None = Field(None, description="The offer chosen.")
    template_hash: str = Field("", description="Hash of the pool template rented with.")
    reason: str = Field("", description="Why it was rented: Warm, Demand, Hedge, Replacement.")


class ProbeStatus(CamelModel):
    """The last readiness/liveness probe of ComfyUI."""

    time: str | None = Field(None, description="When (RFC 3339).")
    ok: bool = Field(False, description="Whether it passed.")
    reason: str = Field("", description="Failure reason (refused, timed_out, model_missing...).")
    message: str = Field("", description="Details.")


ModelPhase = Literal["Pending", "Downloading", "Present", "Failed"]


class ModelProgress(CamelModel):
    """Provisioning of one model file on the machine, as its provisioning step reports it."""

    folder: str = Field(description="ComfyUI model folder.")
    file: str = Field(description="File name inside the folder.")
    phase: ModelPhase = Field("Pending", description="Pending, Downloading, Present or Failed.")
    bytes_done: int = Field(0, ge=0, description="Bytes on disk so far.")
    bytes_total: int | None = Field(None, ge=0, description="Expected bytes, when known.")
    reason: str = Field(
        "",
        description=(
            "Failure reason: ModelAuthFailed, ModelNotFound, ModelChecksumMismatch, DiskFull, "
            "ModelDownloadStalled, ModelDownloadFailed."
        ),
    )
    http_status: int | None = Field(None, description="HTTP status of the failed download.")


class GpuInstanceStatus(CamelModel):
    """Observed state of one rental."""

    observed_generation: int | None = Field(None, description="Last metadata.generation seen.")
    phase: Phase = Field("Pending", description="Lifecycle phase.")
    reason: str = Field("", description="Why it is in this phase (stable word).")
    message: str = Field("", description="Details of the reason.")
    label: str = Field("", description="Vast.ai label (idempotency key) of the rental.")
    contract_id: int | None = Field(None, description="Vast.ai instance (contract) id.")
    machine_id: int | None = Field(None, description="Vast.ai machine id.")
    host_id: int | None = Field(None, description="Vast.ai host id.")
    gpu_name: str = Field("", description="GPU model.")
    price_per_hour: float = Field(0.0, description="dph_total of the rental, $/hour.")
    comfy_url: str = Field("", description="Base URL of ComfyUI on the machine.")
    token_secret: str = Field("", description="Secret holding the ComfyUI token.")
    actual_status: str | None = Field(None, description="Vast.ai actual_status last seen.")
    actual_status_since: str | None = Field(
        None,
        description="Since when actual_status has had its current value (kept across "
        "operator restarts: the offline grace counts from it).",
    )
    intended_status: str | None = Field(None, description="Vast.ai intended_status last seen.")
    cur_state: str | None = Field(None, description="Vast.ai cur_state last seen.")
    status_msg: str | None = Field(None, description="Vast.ai status_msg last seen.")
    rented_at: str | None = Field(None, description="When the rental was created.")
    running_at: str | None = Field(None, description="When Vast.ai first reported running.")
    answering_at: str | None = Field(None, description="When ComfyUI first answered.")
    models_at: str | None = Field(None, description="When the required models were present.")
    models: list[ModelProgress] = Field(
        default_factory=list, description="Download progress and outcome of each model."
    )
    models_progress_at: str | None = Field(
        None,
        description=(
            "When a model download last made progress; while downloads run, the readiness "
            "timeout counts from it."
        ),
    )
    ready_at: str | None = Field(None, description="When the canary finished (Ready).")
    last_job_at: str | None = Field(None, description="When the last job finished.")
    terminated_at: str | None = Field(None, description="When termination started.")
    jobs: int = Field(0, description="Jobs currently placed on the instance.")
    checkpoint: str = Field("", description="Checkpoint the last job loaded (model affinity).")
    probe_failures: int = Field(0, description="Consecutive failed probes.")
    last_probe: ProbeStatus = Field(default_factory=ProbeStatus, description="Last probe.")
    cost: float = Field(0.0, description="Dollars accrued so far (estimate).")
    stopped_at: str | None = Field(
        None, description="When the cold tier last stopped the rental (disk kept)."
    )
    resumed_at: str | None = Field(None, description="When the cold tier last started it.")
    storage_per_hour: float = Field(
        0.0, description="$/hour of its disk alone: what it bills while Stopped."
    )
    billed_from: str | None = Field(
        None,
        description=(
            "Since when pricePerHour applies (a stop or a start changes it); rentedAt when unset."
        ),
    )
    cost_before: float = Field(
        0.0, description="Dollars accrued before billedFrom (at the earlier prices)."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Conditions.")


class GpuInstance(CamelModel):
    """A GpuInstance object as read from the API server."""

    api_version: str = Field("warmpool.dev/v1alpha1", alias="apiVersion")
    kind: Literal["GpuInstance"] = "GpuInstance"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: GpuInstanceSpec
    status: GpuInstanceStatus = Field(default_factory=GpuInstanceStatus)

    @classmethod
    def from_body(cls, body: Any) -> GpuInstance:
        """Parse a Kubernetes object (dict or Kopf body)."""
        return cls.model_validate(dict(body))
