"""The admin console's API against the emulated Kubernetes API, on SQLite and PostgreSQL:
403 for non-admins, each action edits the custom resource, names the admin in an
annotation and in the audit (before/after); sign-ins, user actions, usage and the
operator's money Events are recorded."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from recordsdb import pg_server, records_url  # noqa: F401  (fixtures)
from waiting import eventually

from warmpool.api.records.fleet import ADMIN_ANNOTATION
from warmpool.operator.adapters import kube

NS = "default"
ADMIN = {"X-Auth-Request-User": "root@example.com", "X-Auth-Request-Groups": "warmpool-admins"}
USER = {"X-Auth-Request-User": "bob"}


@pytest.fixture
async def console(studio: Any, records_url: str) -> httpx.AsyncClient:  # noqa: F811
    return await studio(  # type: ignore[no-any-return]
        studio_auth="proxy", studio_proxy_headers="X-Auth-Request", studio_records_url=records_url
    )


async def audit(http: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await http.get("/api/v1/admin/audit", params=params, headers=ADMIN)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_everyone_but_admins_gets_403(console: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/admin"),
        ("GET", "/api/v1/admin/fleet"),
        ("GET", "/api/v1/admin/audit"),
        ("POST", "/api/v1/admin/pools/sdxl/pause"),
        ("DELETE", "/api/v1/admin/instances/x"),
    ]:
        r = await console.request(method, path, headers=USER, json={"paused": True})
        assert r.status_code == 403, (path, r.text)
    page = await console.get("/admin", headers=ADMIN)
    assert page.status_code == 200 and "warmpool admin" in page.text
    denied = await audit(console, action="admin.denied")
    assert {d["actor"] for d in denied} == {"bob"} and len(denied) == 5


async def test_pause_edits_the_pool_and_is_audited_with_before_and_after(
    console: httpx.AsyncClient, kube_client: kube.KubeClient
) -> None:
    r = await console.post("/api/v1/admin/pools/sdxl/pause", json={"paused": True}, headers=ADMIN)
    assert r.status_code == 200, r.text
    pool = await kube_client.get(kube.GPUPOOLS, "sdxl", NS)
    assert pool is not None and pool["spec"]["paused"] is True
    assert pool["metadata"]["annotations"][ADMIN_ANNOTATION] == "root@example.com"
    (rec,) = await audit(console, action="pool.pause")
    assert rec["actor"] == "root@example.com" and rec["objectName"] == "sdxl"
    assert rec["detail"]["before"]["paused"] is False and rec["detail"]["after"]["paused"] is True
    assert rec["address"] == "127.0.0.1"


async def test_scale_prewarm_budget(
    console: httpx.AsyncClient, kube_client: kube.KubeClient
) -> None:
    base = "/api/v1/admin/pools/sdxl"
    assert (
        await console.post(f"{base}/scale", json={"replicas": 3}, headers=ADMIN)
    ).status_code == 200
    r = await console.post(f"{base}/prewarm", json={"count": 2}, headers=ADMIN)
    assert r.json()["after"]["replicas"] == 5
    r = await console.post(
        f"{base}/budget", json={"maxHourlySpend": 2, "maxDailySpend": 1}, headers=ADMIN
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "maxDailySpend"]
    r = await console.post(
        f"{base}/budget", json={"maxHourlySpend": 2, "maxDailySpend": 30}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    pool = await kube_client.get(kube.GPUPOOLS, "sdxl", NS)
    assert pool is not None
    assert pool["spec"]["replicas"] == 5
    # onExceeded keeps the CRD's default (Release) when the form does not set it.
    assert pool["spec"]["budget"] == {"maxHourlySpend": 2, "maxDailySpend": 30,
                                      "onExceeded": "Release"}  # fmt: skip
    r = await console.post(f"{base}/scale", json={"replicas": -1}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "replicas"]
    assert (
        await console.post("/api/v1/admin/pools/nope/scale", json={"replicas": 1}, headers=ADMIN)
    ).status_code == 404
    actions = [a["action"] for a in await audit(console, object="GpuPool/sdxl")]
    assert actions == ["pool.budget", "pool.prewarm", "pool.scale"]


async def test_terminate_an_instance_and_cancel_anyones_job(
    console: httpx.AsyncClient, kube_client: kube.KubeClient
) -> None:
    await kube_client.create(
        kube.GPUINSTANCES, {"metadata": {"name": "sdxl-a1"}, "spec": {"pool": "sdxl"}}, NS
    )
    fleet = await eventually(
        lambda: _fleet_with(console, "sdxl-a1"), what="the instance in the fleet view"
    )
    assert fleet["pools"][0]["name"] == "sdxl"
    r = await console.delete("/api/v1/admin/instances/sdxl-a1", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert await kube_client.get(kube.GPUINSTANCES, "sdxl-a1", NS) is None
    job = await console.post(
        "/api/v1/generations", json={"prompt": "a cat", "pool": "sdxl"}, headers=USER
    )
    assert job.status_code == 201, job.text
    name = job.json()["name"]
    r = await console.delete(f"/api/v1/admin/jobs/{name}", headers=ADMIN)
    assert r.status_code == 200 and r.json()["before"]["owner"] == "bob"
    assert await kube_client.get(kube.GENERATIONJOBS, name, NS) is None
    actions = {(a["actor"], a["action"], a["objectName"]) for a in await audit(console)}
    assert ("root@example.com", "instance.terminate", "sdxl-a1") in actions
    assert ("root@example.com", "job.cancel", name) in actions
    assert ("bob", "generation.create", name) in actions


async def _fleet_with(http: httpx.AsyncClient, instance: str) -> dict[str, Any] | None:
    fleet = (await http.get("/api/v1/admin/fleet", headers=ADMIN)).json()
    return fleet if any(i["name"] == instance for i in fleet["instances"]) else None


async def test_sign_ins_are_audited_with_forwarded_address_and_fingerprint(
    studio: Any,
    kube_client: kube.KubeClient,
    records_url: str,  # noqa: F811
) -> None:
    secret = {
        "metadata": {"name": "warmpool-studio-tokens"},
        "stringData": {"root": "tok-root-0123456789abcdef0123456789ab"},
    }
    await kube_client.create(kube.SECRETS, secret, NS)
    http = await studio(studio_auth="token", studio_admins=["root"], studio_records_url=records_url)
    fwd = {"X-Forwarded-For": "203.0.113.7, 127.0.0.1"}
    bad = await http.post("/api/v1/session", json={"token": "wrong-token-456"}, headers=fwd)
    assert bad.status_code == 401
    good = await http.post(
        "/api/v1/session", json={"token": "tok-root-0123456789abcdef0123456789ab"}, headers=fwd
    )
    assert good.status_code == 204
    root = {"Authorization": "Bearer tok-root-0123456789abcdef0123456789ab"}
    r = await http.get("/api/v1/admin/audit", params={"action": "session."}, headers=root)
    ok, failed = r.json()["items"]
    assert failed["outcome"] == "denied" and failed["address"] == "203.0.113.7"
    assert ok["actor"] == "root" and ok["outcome"] == "ok"
    text = (
        r.text
        + (
            await http.get(
                "/api/v1/admin/audit.csv",
                headers={"Authorization": "Bearer tok-root-0123456789abcdef0123456789ab"},
            )
        ).text
    )
    assert "tok-root-0123456789abcdef0123456789ab" not in text and "wrong-token-456" not in text
    assert (
        len(failed["detail"]["token"]) == 16 and failed["detail"]["token"] != ok["detail"]["token"]
    )


async def test_finished_jobs_go_to_the_ledger_once(
    console: httpx.AsyncClient, drive: Any, png: Any
) -> None:
    job = await console.post(
        "/api/v1/generations", json={"prompt": "a cat", "pool": "sdxl"}, headers=USER
    )
    name = job.json()["name"]
    await drive.set_status(name, {"phase": "Running", "startedAt": "2030-01-01T00:00:00Z",
                                  "gpuName": "RTX 4090", "actualCost": 0.01})  # fmt: skip
    await drive.succeed(name, png())
    await drive.set_status(name, {"actualCost": 0.25, "finishedAt": "2030-01-01T00:00:40Z"})

    async def spent() -> list[dict[str, Any]]:
        r = await console.get("/api/v1/admin/usage", params={"since": "2029-12-31T00:00:00Z",
                              "until": "2030-01-03T00:00:00Z"}, headers=ADMIN)  # fmt: skip
        return list(r.json()["rows"])

    rows = await eventually(spent, what="the usage row")
    await console.app.state.records.settled()  # type: ignore[attr-defined]
    rows = await spent()
    assert len(rows) == 1
    assert (rows[0]["owner"], rows[0]["pool"], rows[0]["jobs"]) == ("bob", "sdxl", 1)
    outputs = await audit(console, action="output.create")
    assert [o["objectName"] for o in outputs] == [f"{name}/0"] and outputs[0]["actor"] == "bob"


async def test_operator_money_events_are_ingested_once(
    console: httpx.AsyncClient, kube_client: kube.KubeClient
) -> None:
    ev = {
        "metadata": {"name": "sdxl-a1.abc"},
        "involvedObject": {"kind": "GpuInstance", "name": "sdxl-a1", "namespace": NS},
        "reason": "Rented", "message": "offer 9 as contract 77: RTX 4090, $0.420/h",
        "type": "Normal", "count": 1, "source": {"component": "kopf"},
    }  # fmt: skip
    created = await kube_client.create(kube.EVENTS, ev, NS)
    rented = await eventually(
        lambda: audit(console, action="operator.rent"), what="the rent record"
    )
    assert rented[0]["detail"]["pricePerHour"] == 0.42 and rented[0]["objectName"] == "sdxl-a1"
    await kube_client.patch(
        kube.EVENTS, created["metadata"]["name"], NS, {"message": created["message"]}
    )
    await kube_client.patch(kube.EVENTS, created["metadata"]["name"], NS, {"count": 2})
    await eventually(lambda: _count(console, "operator.rent", 2), what="the second count")
    assert len(await audit(console, action="operator.rent")) == 2


async def _count(http: httpx.AsyncClient, action: str, n: int) -> bool:
    return len(await audit(http, action=action)) == n


async def test_csv_export_and_verification(console: httpx.AsyncClient) -> None:
    await console.post("/api/v1/admin/pools/sdxl/pause", json={"paused": True}, headers=ADMIN)
    await console.post("/api/v1/admin/pools/sdxl/pause", json={"paused": False}, headers=ADMIN)
    r = await console.get(
        "/api/v1/admin/audit.csv", params={"actor": "root@example.com"}, headers=ADMIN
    )
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["action"] for row in rows] == ["pool.resume", "pool.pause"]
    v = (await console.post("/api/v1/admin/audit/verify", headers=ADMIN)).json()
    assert v["ok"] is True and v["checked"] >= 2


async def test_an_offset_past_what_a_database_integer_holds_is_refused(
    console: httpx.AsyncClient,
) -> None:
    """The fuzz test found it: an offset of 10**20 reached SQLite ("Python int too large to
    convert to SQLite INTEGER") and answered 500. It is a 422 naming the field now."""
    r = await console.get("/api/v1/admin/audit", params={"offset": 10**20}, headers=ADMIN)
    assert r.status_code == 422
    assert "offset" in r.text
