"""The emulated Kubernetes API behaves like a real API server where warmpool relies on it.

Most tests use a small CRD written here (``widgets.test.dev``: status and scale subresources,
a CEL rule) so that they do not depend on the warmpool CRDs; the ``cluster`` fixture (with the
real CRDs) is used where those matter.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import kmock
import pytest
import yaml

from warmpool.sim.cluster import RunningCluster, start_cluster

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.test.dev"},
    "spec": {
        "group": "test.dev",
        "scope": "Namespaced",
        "names": {
            "kind": "Widget",
            "plural": "widgets",
            "singular": "widget",
            "shortNames": ["wd"],
            "categories": ["testing"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "additionalPrinterColumns": [
                    {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                                    "maxReplicas": {"type": "integer"},
                                    "color": {"type": "string"},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "!has(self.maxReplicas)"
                                        " || self.maxReplicas >= self.replicas",
                                        "message": "maxReplicas must be >= replicas",
                                    }
                                ],
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}
BASE = "/apis/test.dev/v1/namespaces/default/widgets"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


@pytest.fixture
async def widgets(tmp_path: Path) -> AsyncIterator[RunningCluster]:
    (tmp_path / "widgets.test.dev.yaml").write_text(yaml.safe_dump(WIDGET_CRD))
    running = await start_cluster(crd_dir=tmp_path)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def http(widgets: RunningCluster) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=widgets.url, timeout=10, verify=False) as client:
        yield client


def widget(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "test.dev/v1", "kind": "Widget", "metadata": meta, "spec": spec}


async def create(http: httpx.AsyncClient, obj: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(BASE, json=obj)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def patch(
    http: httpx.AsyncClient,
    path: str,
    body: Any,
    headers: dict[str, str] = MERGE,
    expect: int = 200,
) -> dict[str, Any]:
    response = await http.patch(path, content=json.dumps(body), headers=headers)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


class WatchStream:
    """Reads watch events line by line, each read with a deadline."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                line = await anext(self._lines)
                if line.strip():
                    event: dict[str, Any] = json.loads(line)
                    return event


# --- discovery ------------------------------------------------------------------------------


async def test_discovery_lists_builtins_and_crds(cluster_http: httpx.AsyncClient) -> None:
    core = (await cluster_http.get("/api/v1")).json()
    assert {"namespaces", "events", "secrets"} <= {r["name"] for r in core["resources"]}
    assert (await cluster_http.get("/api")).json()["versions"] == ["v1"]
    groups = {g["name"]: g for g in (await cluster_http.get("/apis")).json()["groups"]}
    assert {"apiextensions.k8s.io", "events.k8s.io", "coordination.k8s.io", "warmpool.dev"} <= set(
        groups
    )
    crds = (await cluster_http.get("/apis/apiextensions.k8s.io/v1")).json()
    assert "customresourcedefinitions" in {r["name"] for r in crds["resources"]}
    assert (await cluster_http.get("/apis/coordination.k8s.io/v1")).status_code == 200
    warmpool = (await cluster_http.get("/apis/warmpool.dev/v1alpha1")).json()
    by_name = {r["name"]: r for r in warmpool["resources"]}
    assert {"gpupools", "gpuinstances", "generationjobs", "muses"} <= set(by_name)
    assert by_name["gpupools"]["shortNames"] == ["gpool"]
    assert "warmpool" in by_name["muses"]["categories"]
    assert by_name["gpupools/scale"]["kind"] == "Scale"
    assert "gpupools/status" in by_name
    assert (await cluster_http.get("/apis/nothing.dev/v1")).status_code == 404


async def test_crds_are_objects_too(cluster_http: httpx.AsyncClient) -> None:
    crds = (
        await cluster_http.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    ).json()
    names = {c["metadata"]["name"] for c in crds["items"]}
    assert "gpupools.warmpool.dev" in names
    assert crds["kind"] == "CustomResourceDefinitionList"


async def test_a_crd_created_over_http_is_served(cluster_http: httpx.AsyncClient) -> None:
    url = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    assert (await cluster_http.post(url, json=WIDGET_CRD)).status_code == 201
    assert (await cluster_http.get(BASE)).status_code == 200
    assert (await cluster_http.delete(f"{url}/widgets.test.dev")).status_code == 200
    assert (await cluster_http.get(BASE)).status_code == 404


# --- create, read, list -----------------------------------------------------------------------


async def test_create_sets_server_fields(http: httpx.AsyncClient) -> None:
    obj = await create(http, widget("a"))
    meta = obj["metadata"]
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert meta["namespace"] == "default"
    assert obj["spec"]["replicas"] == 1  # defaulted
    again = await http.post(BASE, json=widget("a"))
    assert again.status_code == 409
    assert again.json()["reason"] == "AlreadyExists"


async def test_generate_name(http: httpx.AsyncClient) -> None:
    obj = await create(http, {"metadata": {"generateName": "w-"}, "spec": {}})
    assert obj["metadata"]["name"].startswith("w-")
    assert len(obj["metadata"]["name"]) == 7


async def test_missing_object_and_namespace_are_404(http: httpx.AsyncClient) -> None:
    response = await http.get(f"{BASE}/nope")
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"
    response = await http.post("/apis/test.dev/v1/namespaces/nowhere/widgets", json=widget("a"))
    assert response.status_code == 404


async def test_list_has_kind_api_version_and_resource_version(http: httpx.AsyncClient) -> None:
    await create(http, widget("a"))
    await create(http, widget("b"))
    listing = (await http.get(BASE)).json()
    assert listing["kind"] == "WidgetList"
    assert listing["apiVersion"] == "test.dev/v1"
    assert [i["metadata"]["name"] for i in listing["items"]] == ["a", "b"]
    assert int(listing["metadata"]["resourceVersion"]) >= int(
        listing["items"][-1]["metadata"]["resourceVersion"]
    )
    everywhere = (await http.get("/apis/test.dev/v1/widgets")).json()
    assert len(everywhere["items"]) == 2


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("tier=gold", ["a"], id="equals"),
        pytest.param("tier==gold", ["a"], id="double-equals"),
        pytest.param("tier!=gold", ["b", "c"], id="not-equals"),
        pytest.param("tier in (gold,silver)", ["a", "b"], id="in"),
        pytest.param("tier notin (gold)", ["b", "c"], id="notin"),
        pytest.param("tier", ["a", "b"], id="exists"),
        pytest.param("!tier", ["c"], id="not-exists"),
        pytest.param("tier,app=x", ["a"], id="and"),
    ],
)
async def test_label_selectors_on_list(
    http: httpx.AsyncClient, selector: str, expected: list[str]
) -> None:
    await create(http, widget("a", {"tier": "gold", "app": "x"}))
    await create(http, widget("b", {"tier": "silver"}))
    await create(http, widget("c", {"app": "x"}))
    listing = (await http.get(BASE, params={"labelSelector": selector})).json()
    assert [i["metadata"]["name"] for i in listing["items"]] == expected


async def test_field_selector_on_name(http: httpx.AsyncClient) -> None:
    await create(http, widget("a"))
    await create(http, widget("b"))
    listing = (await http.get(BASE, params={"fieldSelector": "metadata.name=b"})).json()
    assert [i["metadata"]["name"] for i in listing["items"]] == ["b"]


async def test_table_for_kubectl(http: httpx.AsyncClient) -> None:
    await create(http, widget("a", replicas=3))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = (await http.get(BASE, headers={"Accept": accept})).json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Desired", "Age"]
    assert table["rows"][0]["cells"][:2] == ["a", 3]


# --- writes ---------------------------------------------------------------------------------


async def test_resource_version_is_monotonic_and_stale_writes_conflict(
    http: httpx.AsyncClient,
) -> None:
    obj = await create(http, widget("a"))
    rv1 = int(obj["metadata"]["resourceVersion"])
    other = await create(http, widget("b"))
    assert int(other["metadata"]["resourceVersion"]) > rv1
    updated = await patch(http, f"{BASE}/a", {"spec": {"color": "red"}})
    assert int(updated["metadata"]["resourceVersion"]) > int(other["metadata"]["resourceVersion"])

    stale = dict(obj, spec={"color": "blue"})  # carries the first resourceVersion
    response = await http.put(f"{BASE}/a", json=stale)
    assert response.status_code == 409
    assert response.json()["reason"] == "Conflict"
    await patch(
        http, f"{BASE}/a", {"metadata": {"resourceVersion": str(rv1)}, "spec": {}}, expect=409
    )

    fresh = dict(updated, spec={"color": "blue"})
    response = await http.put(f"{BASE}/a", json=fresh)
    assert response.status_code == 200, response.text
    assert response.json()["spec"] == {"color": "blue", "replicas": 1}  # replaced, defaulted
    unconditional = dict(fresh, metadata={"name": "a"})
    assert (await http.put(f"{BASE}/a", json=unconditional)).status_code == 422


async def test_no_op_patch_keeps_resource_version(http: httpx.AsyncClient) -> None:
    obj = await create(http, widget("a", color="red"))
    same = await patch(http, f"{BASE}/a", {"spec": {"color": "red"}})
    assert same["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


async def test_generation_bumps_on_spec_changes_only(http: httpx.AsyncClient) -> None:
    await create(http, widget("a"))
    obj = await patch(http, f"{BASE}/a", {"metadata": {"labels": {"x": "y"}}})
    assert obj["metadata"]["generation"] == 1
    obj = await patch(http, f"{BASE}/a/status", {"status": {"replicas": 1}})
    assert obj["metadata"]["generation"] == 1
    obj = await patch(http, f"{BASE}/a", {"spec": {"color": "red"}})
    assert obj["metadata"]["generation"] == 2


async def test_status_subresource_semantics(http: httpx.AsyncClient) -> None:
    created = await create(http, dict(widget("a"), status={"phase": "ignored on create"}))
    assert "status" not in created
    obj = await patch(http, f"{BASE}/a", {"spec": {"color": "red"}, "status": {"phase": "X"}})
    assert "status" not in obj  # writes to the object ignore status
    obj = await patch(http, f"{BASE}/a/status", {"spec": {"color": "blue"}, "status": {"n": 1}})
    assert obj["status"] == {"n": 1}
    assert obj["spec"]["color"] == "red"  # writes to /status change only status
    put = dict(obj, status={"n": 2}, spec={"color": "green"})
    response = await http.put(f"{BASE}/a/status", json=put)
    assert response.status_code == 200
    assert response.json()["status"] == {"n": 2}
    assert response.json()["spec"]["color"] == "red"


async def test_json_patch_and_strategic_merge_patch(http: httpx.AsyncClient) -> None:
    await create(http, widget("a", color="red"))
    obj = await patch(
        http,
        f"{BASE}/a",
        [{"op": "replace", "path": "/spec/replicas", "value": 4}],
        headers=JSON_PATCH,
    )
    assert obj["spec"]["replicas"] == 4
    await patch(
        http,
        f"{BASE}/a",
        [{"op": "test", "path": "/spec/color", "value": "blue"}],
        headers=JSON_PATCH,
        expect=422,
    )
    strategic = {"Content-Type": "application/strategic-merge-patch+json"}
    obj = await patch(http, f"{BASE}/a", {"spec": {"color": None}}, headers=strategic)
    assert "color" not in obj["spec"]


async def test_cel_rule_refuses_over_http(http: httpx.AsyncClient) -> None:
    response = await http.post(BASE, json=widget("a", replicas=3, maxReplicas=1))
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "spec"
    assert "maxReplicas must be >= replicas" in response.json()["message"]


# --- scale ----------------------------------------------------------------------------------


async def test_scale_subresource(http: httpx.AsyncClient) -> None:
    await create(http, widget("a", replicas=2))
    await patch(http, f"{BASE}/a/status", {"status": {"replicas": 1, "selector": "app=a"}})
    scale = (await http.get(f"{BASE}/a/scale")).json()
    assert (scale["apiVersion"], scale["kind"]) == ("autoscaling/v1", "Scale")
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 1, "selector": "app=a"}

    scale = await patch(http, f"{BASE}/a/scale", {"spec": {"replicas": 5}})
    assert scale["spec"]["replicas"] == 5
    obj = (await http.get(f"{BASE}/a")).json()
    assert obj["spec"]["replicas"] == 5
    assert obj["metadata"]["generation"] == 2

    scale["spec"]["replicas"] = 3
    response = await http.put(f"{BASE}/a/scale", json=scale)
    assert response.status_code == 200
    assert (await http.get(f"{BASE}/a")).json()["spec"]["replicas"] == 3
    response = await http.put(f"{BASE}/a/scale", json=scale)  # stale resourceVersion now
    assert response.status_code == 409

    response = await http.patch(f"{BASE}/a/scale", json={"spec": {"replicas": -1}}, headers=MERGE)
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "spec.replicas"


# --- deletion -------------------------------------------------------------------------------


async def test_finalizers_hold_deletion(http: httpx.AsyncClient, widgets: RunningCluster) -> None:
    await create(http, dict(widget("a"), metadata={"name": "a", "finalizers": ["test/x"]}))
    response = await http.delete(f"{BASE}/a")
    assert response.status_code == 200
    held = (await http.get(f"{BASE}/a")).json()
    assert held["metadata"]["deletionTimestamp"]
    again = await http.delete(f"{BASE}/a")
    assert again.json()["metadata"]["deletionTimestamp"] == held["metadata"]["deletionTimestamp"]
    await patch(http, f"{BASE}/a", {"metadata": {"finalizers": ["test/x", "test/y"]}}, expect=422)
    await patch(http, f"{BASE}/a", {"metadata": {"finalizers": None}})
    assert (await http.get(f"{BASE}/a")).status_code == 404
    assert widgets.get("test.dev/v1", "Widget", "a", "default") is None


async def test_delete_preconditions(http: httpx.AsyncClient) -> None:
    await create(http, widget("a"))
    body = {"preconditions": {"resourceVersion": "1"}}
    response = await http.request("DELETE", f"{BASE}/a", json=body)
    assert response.status_code == 409
    assert (await http.get(f"{BASE}/a")).status_code == 200


async def test_owner_references_cascade(http: httpx.AsyncClient) -> None:
    owner = await create(http, widget("owner"))
    ref = {
        "apiVersion": "test.dev/v1",
        "kind": "Widget",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    await create(http, {"metadata": {"name": "child", "ownerReferences": [ref]}, "spec": {}})
    await create(
        http,
        {
            "metadata": {"name": "held", "ownerReferences": [ref], "finalizers": ["test/x"]},
            "spec": {},
        },
    )
    await create(
        http,
        {
            "metadata": {
                "name": "grandchild",
                "ownerReferences": [
                    dict(
                        ref,
                        name="child",
                        uid=(await http.get(f"{BASE}/child")).json()["metadata"]["uid"],
                    )
                ],
            },
            "spec": {},
        },
    )
    await create(http, widget("unrelated"))
    await http.delete(f"{BASE}/owner")
    names = {i["metadata"]["name"] for i in (await http.get(BASE)).json()["items"]}
    assert names == {"held", "unrelated"}
    assert (await http.get(f"{BASE}/held")).json()["metadata"]["deletionTimestamp"]


async def test_orphan_propagation_keeps_dependents(http: httpx.AsyncClient) -> None:
    owner = await create(http, widget("owner"))
    ref = {
        "apiVersion": "test.dev/v1",
        "kind": "Widget",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    await create(http, {"metadata": {"name": "child", "ownerReferences": [ref]}, "spec": {}})
    await http.delete(f"{BASE}/owner", params={"propagationPolicy": "Orphan"})
    child = (await http.get(f"{BASE}/child")).json()
    assert "ownerReferences" not in child["metadata"]


# --- watches --------------------------------------------------------------------------------


async def test_watch_streams_changes_and_resumes(http: httpx.AsyncClient) -> None:
    await create(http, widget("a", {"app": "x"}))
    listing = (await http.get(BASE)).json()
    since = listing["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": since}
    async with http.stream("GET", BASE, params=params) as response:
        stream = WatchStream(response)
        b = await create(http, widget("b"))
        event = await stream.next()
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "b")
        assert event["object"]["metadata"]["resourceVersion"] == b["metadata"]["resourceVersion"]
        patched = await patch(http, f"{BASE}/a", {"spec": {"color": "red"}})
        event = await stream.next()
        assert event["type"] == "MODIFIED"
        assert (
            event["object"]["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]
        )
        await http.delete(f"{BASE}/b")
        event = await stream.next()
        assert (event["type"], event["object"]["metadata"]["name"]) == ("DELETED", "b")
        assert int(event["object"]["metadata"]["resourceVersion"]) > int(
            patched["metadata"]["resourceVersion"]
        )

    # Resuming from the list's resourceVersion replays everything that happened since.
    async with http.stream("GET", BASE, params=params) as response:
        stream = WatchStream(response)
        types = [(await stream.next())["type"] for _ in range(3)]
        assert types == ["ADDED", "MODIFIED", "DELETED"]


async def test_watch_without_resource_version_starts_with_current_objects(
    http: httpx.AsyncClient,
) -> None:
    await create(http, widget("a"))
    async with http.stream("GET", BASE, params={"watch": "true"}) as response:
        event = await WatchStream(response).next()
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "a")


async def test_watch_with_label_selector(http: httpx.AsyncClient) -> None:
    await create(http, widget("a", {"app": "x"}))
    since = (await http.get(BASE)).json()["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": since, "labelSelector": "app=x"}
    async with http.stream("GET", BASE, params=params) as response:
        stream = WatchStream(response)
        await create(http, widget("other"))  # not selected: no event
        await patch(http, f"{BASE}/other", {"metadata": {"labels": {"app": "x"}}})
        event = await stream.next()
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "other")
        await patch(http, f"{BASE}/a", {"metadata": {"labels": {"app": "y"}}})
        event = await stream.next()
        assert (event["type"], event["object"]["metadata"]["name"]) == ("DELETED", "a")


async def test_watch_timeout_ends_the_stream(http: httpx.AsyncClient) -> None:
    params = {"watch": "true", "timeoutSeconds": "0.2"}
    async with asyncio.timeout(5):
        response = await http.get(BASE, params=params)
    assert response.status_code == 200


async def test_watch_from_an_expired_resource_version_is_410(
    widgets: RunningCluster, http: httpx.AsyncClient
) -> None:
    widgets.store.event_log_size = 2
    for name in "abcd":
        await create(http, widget(name))
    params = {"watch": "true", "resourceVersion": "1"}
    async with http.stream("GET", BASE, params=params) as response:
        event = await WatchStream(response).next()
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410


async def test_stopping_ends_open_watches(tmp_path: Path) -> None:
    running = await start_cluster(crd_dir=tmp_path)
    async with (
        httpx.AsyncClient(base_url=running.url, verify=False) as client,
        client.stream("GET", "/api/v1/namespaces", params={"watch": "true"}) as resp,
    ):
        await WatchStream(resp).next()  # the stream is open
        async with asyncio.timeout(5):
            await running.stop()


# --- KMock underneath ------------------------------------------------------------------------


async def test_kmock_reactions_win_and_objects_keep_history(
    widgets: RunningCluster, http: httpx.AsyncClient
) -> None:
    await create(http, widget("a"))
    await patch(http, f"{BASE}/a", {"spec": {"color": "red"}})
    res = kmock.resource("test.dev", "v1", "widgets")
    assert widgets.emulator.objects[res, "default", "a"] >= {"spec": {"color": "red"}}
    assert len(widgets.emulator.objects[res, "default", "a"].history) == 2

    widgets.emulator["patch", res] << 503
    response = await http.patch(f"{BASE}/a", json={"spec": {"color": "blue"}}, headers=MERGE)
    assert response.status_code == 503
    assert widgets.get("test.dev/v1", "Widget", "a", "default")["spec"]["color"] == "red"  # type: ignore[index]


async def test_direct_access_helpers(widgets: RunningCluster, tmp_path: Path) -> None:
    widgets.create_namespace("team")
    created = widgets.create(
        {
            "apiVersion": "test.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": "team"},
            "status": {"replicas": 1},
            "spec": {},
        },
        keep_status=True,
    )
    assert created["status"] == {"replicas": 1}
    assert [w["metadata"]["name"] for w in widgets.list("test.dev/v1", "widgets")] == ["w"]
    config = yaml.safe_load(widgets.write_kubeconfig(tmp_path / "kc" / "config").read_text())
    assert config["clusters"][0]["cluster"]["server"] == widgets.url
