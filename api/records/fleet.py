"""The admin console's fleet: a snapshot from the shared watches, and the actions.

Every action is an edit of a custom resource made with the **studio's service
account** (not Kubernetes impersonation of the admin): studio admins are studio users
(token Secret names, proxy identities) who need not exist in the cluster's RBAC, and
granting ``impersonate`` would let the studio become any user. The service account
gets exactly the verbs below; the acting admin is named in an annotation on the object
and in the studio's own audit trail (with before and after), which outlives the API
server's audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, status

from warmpool.api.records.schemas import (
    ActionOut,
    ConditionOut,
    Fleet,
    InstanceRow,
    PoolRow,
    StepOut,
)
from warmpool.api.records.service import Records
from warmpool.api.records.usage import parse_time
from warmpool.crds.gpuinstance import GpuInstance
from warmpool.crds.gpupool import GpuPool
from warmpool.operator.adapters import kube

ADMIN_ANNOTATION = "warmpool.dev/last-admin"
ACTION_ANNOTATION = "warmpool.dev/last-admin-action"
STEPS = (
    ("rented", "rented_at"),
    ("running", "running_at"),
    ("answering", "answering_at"),
    ("models", "models_at"),
    ("ready", "ready_at"),
)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def pool_row(obj: dict[str, Any]) -> PoolRow:
    pool = GpuPool.from_body(obj)
    notes = pool.metadata.annotations
    return PoolRow(
        name=pool.metadata.name,
        desired=pool.spec.replicas,
        max_replicas=pool.spec.max_replicas,
        replicas=pool.status.replicas,
        ready=pool.status.ready_replicas,
        queued=pool.status.queued_jobs,
        running=pool.status.running_jobs,
        paused=pool.spec.paused,
        price_per_hour=round(pool.status.price_per_hour, 4),
        spend_today=round(pool.status.spend_today, 4),
        max_hourly_spend=pool.spec.budget.max_hourly_spend,
        max_daily_spend=pool.spec.budget.max_daily_spend,
        conditions=[
            ConditionOut(type=c.type, status=c.status, reason=c.reason, message=c.message)
            for c in pool.status.conditions
        ],
        last_admin=notes.get(ADMIN_ANNOTATION, ""),
        last_admin_action=notes.get(ACTION_ANNOTATION, ""),
    )


def instance_row(obj: dict[str, Any], now: datetime) -> InstanceRow:
    inst = GpuInstance.from_body(obj)
    st = inst.status
    created = parse_time(inst.metadata.creation_timestamp)
    steps, prev = [], created
    for step, attr in STEPS:
        at = parse_time(getattr(st, attr))
        seconds = round((at - prev).total_seconds(), 1) if at and prev else None
        steps.append(StepOut(step=step, at=iso(at) if at else None, seconds=seconds))
        prev = at or prev
    probe = st.last_probe
    probe_text = ""
    if probe.time:
        probe_text = f"{probe.time} {'ok' if probe.ok else probe.reason or 'failed'}"
    return InstanceRow(
        name=inst.metadata.name,
        pool=inst.spec.pool,
        phase=st.phase,
        gpu=st.gpu_name,
        price_per_hour=st.price_per_hour,
        age_seconds=round((now - created).total_seconds(), 1) if created else None,
        contract=st.contract_id,
        last_probe=probe_text,
        status_message=st.status_msg or st.message,
        cost=round(st.cost, 4),
        steps=steps,
    )


def snapshot(records: Records, now: datetime | None = None) -> Fleet:
    now = now or datetime.now(UTC)
    pools = [pool_row(o) for _, o in sorted(records.pools.objects.items())]
    instances = [instance_row(o, now) for _, o in sorted(records.instances.objects.items())]
    return Fleet(pools=pools, instances=instances, at=iso(now))


# ---------------------------------------------------------------- actions


def _notes(admin: str, action: str) -> dict[str, str]:
    return {ADMIN_ANNOTATION: admin, ACTION_ANNOTATION: f"{action} {iso(datetime.now(UTC))}"}


def _pool_view(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    return {
        "replicas": spec.get("replicas", 1),
        "maxReplicas": spec.get("maxReplicas"),
        "paused": bool(spec.get("paused", False)),
        "budget": spec.get("budget") or {},
    }


async def _get(client: kube.KubeClient, res: kube.Resource, name: str, ns: str) -> dict[str, Any]:
    obj = await client.get(res, name, ns)
    if obj is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{res.kind} {name} not found")
    return obj


async def edit_pool(
    client: kube.KubeClient,
    ns: str,
    admin: str,
    name: str,
    action: str,
    spec_of: Any,
) -> ActionOut:
    """Read the pool, patch ``spec_of(spec)`` and the annotations, answer before/after."""
    obj = await _get(client, kube.GPUPOOLS, name, ns)
    before = _pool_view(obj)
    patch = {
        "metadata": {
            "annotations": _notes(admin, action),
            "resourceVersion": obj["metadata"].get("resourceVersion"),
        },
        "spec": spec_of(obj.get("spec") or {}),
    }
    after_obj = await client.patch(kube.GPUPOOLS, name, ns, patch)
    return ActionOut(
        action=action, object=f"GpuPool/{name}", before=before, after=_pool_view(after_obj)
    )


def prewarm_spec(spec: dict[str, Any], count: int) -> dict[str, Any]:
    """``count`` more warm instances now: replicas up, the ceiling with it if needed."""
    replicas = int(spec.get("replicas", 1)) + count
    out: dict[str, Any] = {"replicas": replicas}
    ceiling = spec.get("maxReplicas")
    if ceiling is not None and int(ceiling) < replicas:
        out["maxReplicas"] = replicas
    return out


def scale_spec(spec: dict[str, Any], replicas: int) -> dict[str, Any]:
    out: dict[str, Any] = {"replicas": replicas}
    ceiling = spec.get("maxReplicas")
    if ceiling is not None and int(ceiling) < replicas:
        out["maxReplicas"] = replicas
    return out


async def delete_object(
    client: kube.KubeClient,
    res: kube.Resource,
    ns: str,
    admin: str,
    name: str,
    action: str,
) -> ActionOut:
    """Annotate with the admin, then delete (the operator's finalizers do the rest)."""
    obj = await client.get(res, name, ns)
    if obj is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{res.kind} {name} not found")
    before = {"phase": (obj.get("status") or {}).get("phase", "")}
    if res == kube.GPUINSTANCES:
        before["contract"] = (obj.get("status") or {}).get("contractId")
    else:
        before["owner"] = (obj.get("spec") or {}).get("owner")
    await client.patch(res, name, ns, {"metadata": {"annotations": _notes(admin, action)}})
    await client.delete(res, name, ns)
    return ActionOut(
        action=action, object=f"{res.kind}/{name}", before=before, after={"deleted": True}
    )
