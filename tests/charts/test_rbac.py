"""RBAC is exactly what the code calls: every API call is allowed and nothing more is granted.

The table below lists every (API group, resource, verb) the operator and the studio use, with
the reason. Entries marked ``CODE`` are calls in our own source; a scan of ``operator/`` and
``api/`` (the ``KubeClient`` methods, the helpers that take a ``kube.Resource``, and the Kopf
decorators) must find exactly those, so the table cannot drift from the code. The other entries
are made by Kopf itself or by the API server on our behalf, each with its reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

WP = "warmpool.dev"
CODE = "our code (found by the source scan)"
KOPF_WATCH = "Kopf watches the kind it has handlers for: list + watch"
KOPF_PATCH = "Kopf patches finalizers, progress annotations and handler results"
KOPF_STATUS = "Kopf writes handler results to status through the status subresource"
KOPF_CRDS = "Kopf watches CRDs to notice resources appearing and disappearing"
KOPF_EVENTS = "Kopf posts an Event for handler outcomes and logged decisions"
KOPF_NAMESPACES = "Kopf restricted to a namespace lists and watches namespaces to match it"
KOPF_PEERING = "Kopf peering: replicas list/watch the peering object, patch it as keepalive"
OWNER_REF = "ownerReferences with blockOwnerDeletion need update on the owner's finalizers"

Call = tuple[str, str, str]  # (api group, resource[/subresource], verb)

KINDS = {
    "GPUPOOLS": (WP, "gpupools"),
    "GPUINSTANCES": (WP, "gpuinstances"),
    "GENERATIONJOBS": (WP, "generationjobs"),
    "MUSES": (WP, "muses"),
    "SECRETS": ("", "secrets"),
    "EVENTS": ("", "events"),
    "NAMESPACES": ("", "namespaces"),
    "LEASES": ("coordination.k8s.io", "leases"),
    "CRDS": ("apiextensions.k8s.io", "customresourcedefinitions"),
}
METHOD_VERBS = {
    "get": "get",
    "list": "list",
    "list_with_version": "list",
    "watch": "watch",
    "create": "create",
    "patch": "patch",
    "replace": "update",
    "delete": "delete",
}
KOPF_DECORATORS = {"create", "update", "delete", "resume", "field", "event", "daemon", "timer"}


def _kopf_kind(plural: str) -> dict[Call, str]:
    return {
        (WP, plural, "list"): KOPF_WATCH,
        (WP, plural, "watch"): KOPF_WATCH,
        (WP, plural, "patch"): KOPF_PATCH,
        (WP, f"{plural}/status", "patch"): KOPF_STATUS,
    }


# ---------------------------------------------------------------- the table

OPERATOR_CALLS: dict[Call, str] = {
    **_kopf_kind("gpupools"),
    **_kopf_kind("gpuinstances"),
    **_kopf_kind("generationjobs"),
    **_kopf_kind("muses"),
    (WP, "gpupools", "get"): CODE,
    (WP, "gpuinstances", "get"): CODE,  # each instance step reads its object fresh
    (WP, "gpuinstances", "list"): CODE,
    (WP, "gpuinstances", "create"): CODE,
    (WP, "gpuinstances", "delete"): CODE,
    (WP, "generationjobs", "get"): CODE,
    (WP, "generationjobs", "list"): CODE,
    (WP, "generationjobs", "delete"): CODE,  # finished jobs past their TTL
    (WP, "muses", "get"): CODE,  # a job's muse, composed into its prompt
    (WP, "gpupools/finalizers", "update"): OWNER_REF,  # GpuInstances are owned by their pool
    (WP, "gpuinstances/finalizers", "update"): OWNER_REF,  # token Secrets by their instance
    ("", "secrets", "get"): CODE,
    ("", "secrets", "create"): CODE,
    ("", "events", "create"): KOPF_EVENTS,
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"): KOPF_CRDS,
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"): KOPF_CRDS,
}
OPERATOR_NAMESPACED_EXTRA: dict[Call, str] = {
    ("", "namespaces", "list"): KOPF_NAMESPACES,
    ("", "namespaces", "watch"): KOPF_NAMESPACES,
}


def operator_peering(resource: str) -> dict[Call, str]:
    return {
        ("kopf.dev", resource, verb): KOPF_PEERING for verb in ("list", "watch", "get", "patch")
    }


STUDIO_CALLS: dict[Call, str] = {
    (WP, "generationjobs", "create"): CODE,
    (WP, "generationjobs", "get"): CODE,
    (WP, "generationjobs", "list"): CODE,
    (WP, "generationjobs", "watch"): CODE,  # one shared watch feeds the SSE progress streams
    (WP, "generationjobs", "delete"): CODE,  # cancel
    (WP, "muses", "create"): CODE,
    (WP, "muses", "get"): CODE,
    (WP, "muses", "list"): CODE,
    (WP, "muses", "update"): CODE,
    (WP, "muses", "delete"): CODE,
    (WP, "generationjobs", "patch"): CODE,  # admin console: annotate with the admin, cancel
    (WP, "gpupools", "get"): CODE,
    (WP, "gpupools", "list"): CODE,
    (WP, "gpupools", "watch"): CODE,  # admin console fleet view
    (WP, "gpupools", "patch"): CODE,  # admin console: scale, pause, prewarm, budget
    (WP, "gpuinstances", "get"): CODE,
    (WP, "gpuinstances", "list"): CODE,  # admin console fleet view
    (WP, "gpuinstances", "watch"): CODE,
    (WP, "gpuinstances", "patch"): CODE,  # annotate with the admin before terminating
    (WP, "gpuinstances", "delete"): CODE,  # admin console: terminate one instance
    ("", "events", "list"): CODE,  # the operator's money Events, copied into the audit
    ("", "events", "watch"): CODE,
    ("", "secrets", "get"): CODE,  # the token Secret only (resourceNames)
    ("", "namespaces", "get"): CODE,  # /readyz reads its own namespace (resourceNames)
}

# ---------------------------------------------------------------- the source scan


def _resource_arg(node: ast.expr) -> str | None:
    """``kube.GPUPOOLS`` → ``GPUPOOLS``."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "kube"
        and node.attr in KINDS
    ):
        return node.attr
    return None


def _func_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _subresource(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == "subresource":
            assert isinstance(keyword.value, ast.Constant), ast.unparse(call)
            return str(keyword.value.value)
    return None


def _with_sub(resource: str, sub: str | None) -> str:
    return resource if sub is None else f"{resource}/{sub}"


def _wrappers(trees: Iterable[ast.Module]) -> dict[str, set[tuple[str, str | None]]]:
    """Functions taking a ``kube.Resource`` parameter → the (verb, subresource) they call on it."""
    found: dict[str, set[tuple[str, str | None]]] = {}
    for tree in trees:
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            params = {
                a.arg
                for a in fn.args.args + fn.args.kwonlyargs
                if a.annotation is not None and ast.unparse(a.annotation) == "kube.Resource"
            }
            for call in ast.walk(fn):
                if (
                    params
                    and isinstance(call, ast.Call)
                    and _func_name(call) in METHOD_VERBS
                    and call.args
                    and isinstance(call.args[0], ast.Name)
                    and call.args[0].id in params
                ):
                    verb = METHOD_VERBS[str(_func_name(call))]
                    found.setdefault(fn.name, set()).add((verb, _subresource(call)))
    return found


@dataclass
class Scan:
    calls: set[Call]
    watched: set[str]  # plurals with Kopf handlers
    unknown: list[str]


def scan_source(folder: Path) -> Scan:
    files = [p for p in sorted(folder.rglob("*.py")) if p.name != "kube.py"]
    trees = [ast.parse(p.read_text(), filename=str(p)) for p in files]
    wrappers = _wrappers(trees)
    scan = Scan(set(), set(), [])
    for path, tree in zip(files, trees, strict=True):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _func_name(node)
            if name == "post_event":
                scan.calls.add(("", "events", "create"))
                continue
            if (
                isinstance(node.func, ast.Attribute)
                and ast.unparse(node.func).startswith("kopf.")
                and name in KOPF_DECORATORS
            ):
                for arg in node.args:
                    if isinstance(arg, ast.Starred) and isinstance(arg.value, ast.Name):
                        scan.watched.add(KINDS[arg.value.id][1])
                continue
            kinds = [k for k in map(_resource_arg, node.args) if k is not None]
            if not kinds:
                continue
            group, plural = KINDS[kinds[0]]
            if name in METHOD_VERBS:
                sub = _subresource(node)
                scan.calls.add((group, _with_sub(plural, sub), METHOD_VERBS[name]))
            elif name in wrappers:
                for verb, sub in wrappers[name]:
                    scan.calls.add((group, _with_sub(plural, sub), verb))
            else:
                scan.unknown.append(f"{path.relative_to(folder.parent)}:{node.lineno} {name}()")
    return scan


def test_the_operator_table_is_what_the_code_calls(chart: Any) -> None:
    scan = scan_source(chart.repo / "operator")
    assert scan.unknown == [], "calls with a kube resource the scan cannot classify"
    in_table = {call for call, why in OPERATOR_CALLS.items() if why == CODE}
    missing = scan.calls - OPERATOR_CALLS.keys()
    assert missing == set(), "the operator calls these: add them to the table and the chart"
    assert in_table - scan.calls == set(), "no longer called: remove from the table and the chart"
    watched = {resource for (_, resource, why) in _watch_entries(OPERATOR_CALLS)}
    assert scan.watched == watched


def _watch_entries(table: dict[Call, str]) -> set[tuple[str, str, str]]:
    return {(g, r, why) for (g, r, _), why in table.items() if why == KOPF_WATCH}


def test_the_studio_table_is_what_the_code_calls(chart: Any) -> None:
    scan = scan_source(chart.repo / "api")
    assert scan.unknown == [], "calls with a kube resource the scan cannot classify"
    assert scan.watched == set()
    assert scan.calls == STUDIO_CALLS.keys()


def test_the_scan_sees_calls_through_helpers(tmp_path: Path) -> None:
    """A call through a helper that takes a ``kube.Resource`` is attributed to the kind."""
    (tmp_path / "mod.py").write_text(
        "async def fetch(client, res: kube.Resource, name):\n"
        "    await client.patch(res, name, None, {}, subresource='status')\n"
        "async def main(client):\n"
        "    await fetch(client, kube.MUSES, 'x')\n"
        "    await client.delete(kube.SECRETS, 'y')\n"
        "    await mystery(kube.LEASES)\n"
    )
    scan = scan_source(tmp_path)
    assert scan.calls == {(WP, "muses/status", "patch"), ("", "secrets", "delete")}
    assert len(scan.unknown) == 1


# ---------------------------------------------------------------- what the chart grants

Grant = tuple[str, str, str, str | None, str]  # group, resource, verb, resourceName, scope


def grants_of(manifests: list[Any], service_account: str, namespace: str) -> set[Grant]:
    roles = {
        (m["kind"], m["metadata"]["name"]): m
        for m in manifests
        if m["kind"] in ("Role", "ClusterRole")
    }
    result: set[Grant] = set()
    for binding in manifests:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = binding.get("subjects") or []
        if {
            "kind": "ServiceAccount",
            "name": service_account,
            "namespace": namespace,
        } not in subjects:
            continue
        ref = binding["roleRef"]
        role = roles[(ref["kind"], ref["name"])]
        scope = (
            "cluster"
            if binding["kind"] == "ClusterRoleBinding"
            else binding["metadata"]["namespace"]
        )
        for rule in role.get("rules") or []:
            assert "nonResourceURLs" not in rule
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        for name in rule.get("resourceNames") or [None]:
                            assert "*" not in (group, resource, verb), rule
                            result.add((group, resource, verb, name, scope))
    return result


def calls_of(grants: set[Grant]) -> set[Call]:
    return {(g, r, v) for g, r, v, _, _ in grants}


@pytest.mark.parametrize(
    ("values", "extra", "scopes"),
    [
        pytest.param({}, {}, {"cluster"}, id="cluster-wide"),
        pytest.param(
            {"operator": {"replicas": 2}},
            operator_peering("clusterkopfpeerings"),
            {"cluster"},
            id="cluster-wide-peering",
        ),
        pytest.param(
            {"operator": {"watchNamespace": "gpu"}},
            OPERATOR_NAMESPACED_EXTRA,
            {"gpu"},
            id="namespaced",
        ),
        pytest.param(
            {
                "operator": {
                    "watchNamespace": "gpu",
                    "peering": {"enabled": True, "name": "warmpool"},
                }
            },
            {**OPERATOR_NAMESPACED_EXTRA, **operator_peering("kopfpeerings")},
            {"gpu"},
            id="namespaced-peering",
        ),
        pytest.param(
            {"operator": {"watchNamespaces": ["gpu", "team-b"], "replicas": 2}},
            {**OPERATOR_NAMESPACED_EXTRA, **operator_peering("kopfpeerings")},
            {"gpu", "team-b"},
            id="several-namespaces-peering",
        ),
        pytest.param(
            {"operator": {"watchNamespace": "gpu", "watchNamespaces": ["gpu", "team-b"]}},
            OPERATOR_NAMESPACED_EXTRA,
            {"gpu", "team-b"},
            id="both-values-merged",
        ),
    ],
)
def test_operator_is_granted_exactly_its_calls(
    chart: Any, values: dict[str, Any], extra: dict[Call, str], scopes: set[str]
) -> None:
    manifests = chart.render(values)
    grants = grants_of(manifests, "wp-warmpool-operator", "warmpool")
    assert calls_of(grants) == OPERATOR_CALLS.keys() | extra.keys()
    where_granted: dict[tuple[str, str, str], set[str]] = {}
    for group, resource, verb, name, where in grants:
        where_granted.setdefault((group, resource, verb), set()).add(where)
        if "peerings" in resource and verb in ("get", "patch"):
            assert name == "warmpool"
        else:
            assert name is None
    for (group, resource, verb), found in where_granted.items():
        cluster_scoped = resource in (
            "customresourcedefinitions",
            "namespaces",
            "clusterkopfpeerings",
        )
        assert found == ({"cluster"} if cluster_scoped else scopes), (group, resource, verb)
    deployment = chart.one(manifests, "Deployment", "-operator")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    served = env.get("WARMPOOL_NAMESPACE")
    assert (set(served.split(",")) if served else {"cluster"}) == scopes


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({}, id="cluster-wide"),
        pytest.param({"operator": {"watchNamespaces": ["gpu", "team-b"]}}, id="namespaced"),
    ],
)
def test_the_operator_can_never_list_or_watch_secrets(chart: Any, values: dict[str, Any]) -> None:
    """Secrets are read by name only (a pool's own tokenSecret, an instance's token): the
    operator cannot enumerate the Secrets of a namespace, let alone of the cluster."""
    grants = grants_of(chart.render(values), "wp-warmpool-operator", "warmpool")
    verbs = {verb for _, resource, verb, _, _ in grants if resource == "secrets"}
    assert verbs == {"get", "create"}
    where = {w for _, resource, _, _, w in grants if resource == "secrets"}
    assert where == ({"cluster"} if not values else {"gpu", "team-b"})


@pytest.mark.parametrize("mode", ["token", "proxy", "none"])
def test_studio_is_granted_exactly_its_calls(chart: Any, mode: str) -> None:
    auth: dict[str, Any] = {"mode": mode}
    if mode == "proxy":
        auth["proxy"] = {"trustedProxies": ["10.0.0.0/8"]}
    values = {"workloadNamespace": "studio-ns", "studio": {"auth": auth}}
    grants = grants_of(chart.render(values), "wp-warmpool-studio", "warmpool")
    expected = set(STUDIO_CALLS)
    if mode != "token":
        expected.discard(("", "secrets", "get"))
    assert calls_of(grants) == expected
    for group, resource, verb, name, where in grants:
        if resource == "secrets":
            assert (name, where) == ("warmpool-studio-tokens", "studio-ns")
        elif resource == "namespaces":
            assert (name, where) == ("studio-ns", "cluster")
        else:
            assert (name, where) == (None, "studio-ns"), (group, resource, verb)


# ---------------------------------------------------------------- what people are granted

POOL_WRITES = {(WP, "gpupools", verb) for verb in ("create", "update", "patch", "delete")} | {
    (WP, "gpupools/scale", "update"),
    (WP, "gpupools/scale", "patch"),
    (WP, "gpuinstances", "delete"),
}
WORK_WRITES = {
    (WP, kind, verb)
    for kind in ("generationjobs", "muses")
    for verb in ("create", "update", "patch", "delete")
}
READS = {
    (WP, kind, verb)
    for kind in ("gpupools", "gpupools/scale", "gpupools/status", "gpuinstances",
                 "gpuinstances/status", "generationjobs", "generationjobs/status", "muses")
    for verb in ("get", "list", "watch")
}  # fmt: skip


def rules_calls(role: dict[str, Any]) -> set[Call]:
    return {
        (group, resource, verb)
        for rule in role.get("rules") or []
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


#: The built-in roles include the next smaller one: ``view`` is labelled aggregate-to-edit,
#: ``edit`` aggregate-to-admin.
BUILTIN_INCLUDES = {"view": None, "edit": "view", "admin": "edit"}


def aggregated(manifests: list[Any], builtin: str) -> set[Call]:
    """What the chart adds to a built-in role (view, edit, admin): the API server's
    aggregation controller unions the rules of every ClusterRole labelled for it, and the
    built-in roles include each other (admin ⊇ edit ⊇ view)."""
    label = f"rbac.authorization.k8s.io/aggregate-to-{builtin}"
    own: set[Call] = set().union(
        *(
            rules_calls(m)
            for m in manifests
            if m["kind"] == "ClusterRole" and m["metadata"].get("labels", {}).get(label) == "true"
        )
    )
    smaller = BUILTIN_INCLUDES[builtin]
    return own | (aggregated(manifests, smaller) if smaller else set())


def test_edit_makes_jobs_and_muses_but_never_rents(
    chart: Any, default_manifests: list[Any]
) -> None:
    """A namespace editor makes images; renting machines (pools, scale, terminate) and setting
    a pool's budget need the warmpool pool-admin role (Karpenter's NodePool pattern)."""
    edit = aggregated(default_manifests, "edit")
    assert edit == READS | WORK_WRITES
    assert not edit & POOL_WRITES
    assert aggregated(default_manifests, "admin") == READS | WORK_WRITES
    assert aggregated(default_manifests, "view") == READS


def test_pool_admin_rents(chart: Any, default_manifests: list[Any]) -> None:
    role = chart.one(default_manifests, "ClusterRole", "-pool-admin")
    assert rules_calls(role) == READS | WORK_WRITES | POOL_WRITES
    assert "rbac.authorization.k8s.io/aggregate-to-admin" not in role["metadata"]["labels"]
    assert not any(r["resources"] == ["secrets"] for r in role["rules"])


def test_pool_admin_can_be_aggregated_into_admin(chart: Any) -> None:
    manifests = chart.render({"rbac": {"poolAdmin": {"aggregateToAdmin": True}}})
    assert aggregated(manifests, "admin") == READS | WORK_WRITES | POOL_WRITES
    assert not aggregated(manifests, "edit") & POOL_WRITES


def test_no_aggregation_keeps_the_pool_admin_role(chart: Any) -> None:
    manifests = chart.render({"rbac": {"aggregateToDefaultRoles": False}})
    assert aggregated(manifests, "edit") == set() and aggregated(manifests, "admin") == set()
    assert rules_calls(chart.one(manifests, "ClusterRole", "-pool-admin")) >= POOL_WRITES
