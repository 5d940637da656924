"""The emulated API calls validating admission webhooks as a real API server does.

Rule and selector matching are pure (T1); the calls go over real HTTPS to a small
aiohttp webhook on a loopback port with a trustme certificate for the Service's DNS name
(``hook.hooks.svc``), so the caBundle verification and the server name are exercised.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import httpx
import pytest
import trustme

from warmpool.sim.cluster import RunningCluster, start_cluster
from warmpool.sim.cluster_admission import Attributes, rule_matches, selector_matches
from warmpool.sim.cluster_resources import BUILTINS, ResourceType

JOBS_PATH = "/apis/warmpool.dev/v1alpha1/namespaces/default/generationjobs"
GROUP = "warmpool.dev"
JOBS_RT = ResourceType(GROUP, "v1alpha1", "generationjobs", "GenerationJob", True, custom=True)
NS_RT = next(rt for rt in BUILTINS if rt.plural == "namespaces")


def attrs(
    operation: str = "CREATE",
    rt: ResourceType = JOBS_RT,
    namespace: str | None = "default",
    sub: str | None = None,
) -> Attributes:
    return Attributes(rt, operation, namespace, "x", {"metadata": {}}, None, subresource=sub)


def rule(**over: Any) -> dict[str, Any]:
    base = {
        "apiGroups": [GROUP],
        "apiVersions": ["v1alpha1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["generationjobs"],
    }
    return {**base, **over}


RULES: dict[str, tuple[dict[str, Any], Attributes, bool]] = {
    "exact": (rule(), attrs(), True),
    "update": (rule(), attrs("UPDATE"), True),
    "delete-not-listed": (rule(), attrs("DELETE"), False),
    "operations-star": (rule(operations=["*"]), attrs("DELETE"), True),
    "other-group": (rule(apiGroups=["apps"]), attrs(), False),
    "groups-star": (rule(apiGroups=["*"]), attrs(), True),
    "other-version": (rule(apiVersions=["v1"]), attrs(), False),
    "other-resource": (rule(resources=["muses"]), attrs(), False),
    "resources-star": (rule(resources=["*"]), attrs(), True),
    "status-not-by-resource": (rule(), attrs(sub="status"), False),
    "status-not-by-star": (rule(resources=["*"]), attrs(sub="status"), False),
    "status-by-res-slash-star": (rule(resources=["generationjobs/*"]), attrs(sub="status"), True),
    "res-slash-star-covers-main": (rule(resources=["generationjobs/*"]), attrs(), True),
    "status-by-star-slash-status": (rule(resources=["*/status"]), attrs(sub="status"), True),
    "scale-not-by-star-slash-status": (rule(resources=["*/status"]), attrs(sub="scale"), False),
    "all-by-star-star": (rule(resources=["*/*"]), attrs(sub="scale"), True),
    "scope-namespaced": (rule(scope="Namespaced"), attrs(), True),
    "scope-cluster-refuses-namespaced": (rule(scope="Cluster"), attrs(), False),
    "scope-cluster": (
        rule(apiGroups=[""], apiVersions=["v1"], resources=["namespaces"], scope="Cluster"),
        attrs(rt=NS_RT, namespace=None),
        True,
    ),
}


@pytest.mark.parametrize(("the_rule", "the_attrs", "expected"), RULES.values(), ids=RULES.keys())
def test_rule_matches(the_rule: dict[str, Any], the_attrs: Attributes, expected: bool) -> None:
    assert rule_matches(the_rule, the_attrs) is expected


def expr(op: str, *values: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": "a", "operator": op, "values": list(values)}]}


SELECTORS: dict[str, tuple[dict[str, Any] | None, dict[str, str], bool]] = {
    "none": (None, {}, True),
    "empty": ({}, {"a": "1"}, True),
    "labels": ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    "labels-differ": ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    "in": (expr("In", "1"), {"a": "1"}, True),
    "in-missing": (expr("In", "1"), {}, False),
    "notin": (expr("NotIn", "1"), {}, True),
    "notin-hit": (expr("NotIn", "1"), {"a": "1"}, False),
    "exists": (expr("Exists"), {"a": ""}, True),
    "does-not-exist": (expr("DoesNotExist"), {"a": "x"}, False),
}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"), SELECTORS.values(), ids=SELECTORS.keys()
)
def test_selector_matches(
    selector: dict[str, Any] | None, labels: dict[str, str], expected: bool
) -> None:
    assert selector_matches(selector, labels) is expected


# ---------------------------------------------------------------- over HTTPS


@dataclass
class Hook:
    """A webhook server: records the reviews it gets, answers with ``decide``."""

    url: str
    port: int
    reviews: list[dict[str, Any]] = field(default_factory=list)
    decide: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None


async def allow_unless_forbidden(review: dict[str, Any]) -> dict[str, Any]:
    obj = review["request"]["object"] or {}
    bad = "forbidden" in json.dumps(obj.get("spec") or {})
    response: dict[str, Any] = {"uid": review["request"]["uid"], "allowed": not bad}
    if bad:
        response["status"] = {"code": 403, "message": "spec.prompt: no forbidden things"}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def hook(ca: trustme.CA) -> AsyncIterator[Hook]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hook.hooks.svc").configure_cert(context)
    state = Hook(url="", port=0, decide=allow_unless_forbidden)

    async def serve(request: aiohttp.web.Request) -> aiohttp.web.Response:
        review = await request.json()
        review["_path"] = request.path_qs
        state.reviews.append(review)
        assert state.decide is not None
        return aiohttp.web.json_response(await state.decide(review))

    app = aiohttp.web.Application()
    app.router.add_post("/{tail:.*}", serve)
    runner = aiohttp.web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    state.port = int(runner.addresses[0][1])
    state.url = f"https://127.0.0.1:{state.port}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def cluster() -> AsyncIterator[RunningCluster]:
    async with await start_cluster() as running:
        yield running


def register(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook, **over: Any
) -> dict[str, Any]:  # fmt: skip
    webhook = {
        "name": "jobs.hooks.example",
        "clientConfig": {
            "service": {"namespace": "hooks", "name": "hook", "path": "/validate", "port": 443},
            "caBundle": base64.b64encode(ca.cert_pem.bytes()).decode(),
        },
        "rules": [rule()],
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 2,
        **over,
    }
    cluster.emulator.webhooks.services[("hooks", "hook")] = ("127.0.0.1", hook.port)
    return cluster.create(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "hooks"},
            "webhooks": [webhook],
        }
    )


def job(name: str, prompt: str = "a lighthouse") -> dict[str, Any]:
    return {
        "apiVersion": "warmpool.dev/v1alpha1",
        "kind": "GenerationJob",
        "metadata": {"name": name, "labels": {"team": "a"}},
        "spec": {"pool": "sdxl", "prompt": prompt},
    }


async def post(cluster: RunningCluster, body: dict[str, Any], query: str = "") -> httpx.Response:
    async with httpx.AsyncClient(base_url=cluster.url) as http:
        return await http.post(JOBS_PATH + query, json=body)


async def test_denied_create_is_not_stored_and_says_who_denied(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook
) -> None:
    register(cluster, ca, hook)
    answer = await post(cluster, job("bad", "forbidden"))
    assert answer.status_code == 403
    status = answer.json()
    assert status["kind"] == "Status" and status["status"] == "Failure"
    assert status["message"] == (
        'admission webhook "jobs.hooks.example" denied the request: '
        "spec.prompt: no forbidden things"
    )
    assert cluster.get("warmpool.dev/v1alpha1", "GenerationJob", "bad", "default") is None
    review = hook.reviews[-1]
    assert review["apiVersion"] == "admission.k8s.io/v1" and review["kind"] == "AdmissionReview"
    request = review["request"]
    assert request["operation"] == "CREATE" and request["oldObject"] is None
    assert request["resource"] == {
        "group": GROUP,
        "version": "v1alpha1",
        "resource": "generationjobs",
    }
    assert request["kind"]["kind"] == "GenerationJob" and request["namespace"] == "default"
    assert request["object"]["spec"]["quality"] == "medium"  # defaulted before admission
    assert review["_path"] == "/validate?timeout=2s"


async def test_allowed_create_and_update_with_old_object(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook
) -> None:
    register(cluster, ca, hook)
    assert (await post(cluster, job("good"))).status_code == 201
    async with httpx.AsyncClient(base_url=cluster.url) as http:
        patch = {"spec": {"prompt": "forbidden now"}}
        headers = {"Content-Type": "application/merge-patch+json"}
        answer = await http.patch(f"{JOBS_PATH}/good", content=json.dumps(patch), headers=headers)
        assert answer.status_code == 403
        assert "denied the request" in answer.json()["message"]
        stored = cluster.get("warmpool.dev/v1alpha1", "GenerationJob", "good", "default")
        assert stored is not None and stored["spec"]["prompt"] == "a lighthouse"
        update = hook.reviews[-1]["request"]
        assert update["operation"] == "UPDATE"
        assert update["oldObject"]["spec"]["prompt"] == "a lighthouse"
        # The status subresource does not match a rule on "generationjobs".
        calls = len(hook.reviews)
        status_patch = json.dumps({"status": {"phase": "Queued"}})
        answer = await http.patch(f"{JOBS_PATH}/good/status", content=status_patch, headers=headers)
        assert answer.status_code == 200 and len(hook.reviews) == calls


async def test_dry_run_calls_the_webhook_and_stores_nothing(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook
) -> None:
    register(cluster, ca, hook)
    answer = await post(cluster, job("dry"), "?dryRun=All")
    assert answer.status_code == 201
    assert hook.reviews[-1]["request"]["dryRun"] is True
    assert cluster.get("warmpool.dev/v1alpha1", "GenerationJob", "dry", "default") is None


@pytest.mark.parametrize(
    ("policy", "expected"), [("Fail", 500), ("Ignore", 201)], ids=["fail", "ignore"]
)
async def test_unreachable_webhook_follows_the_failure_policy(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook, policy: str, expected: int
) -> None:
    register(cluster, ca, hook, failurePolicy=policy)
    cluster.emulator.webhooks.services.clear()  # no endpoint for the Service
    answer = await post(cluster, job("j"))
    assert answer.status_code == expected
    if expected == 500:
        status = answer.json()
        assert status["reason"] == "InternalError"
        assert status["message"].startswith(
            'Internal error occurred: failed calling webhook "jobs.hooks.example": '
            'failed to call webhook: Post "https://hook.hooks.svc:443/validate?timeout=2s"'
        )


async def test_connection_refused_fails_closed(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook
) -> None:
    register(cluster, ca, hook)
    cluster.emulator.webhooks.services[("hooks", "hook")] = ("127.0.0.1", 1)
    answer = await post(cluster, job("j"))
    assert answer.status_code == 500
    assert cluster.get("warmpool.dev/v1alpha1", "GenerationJob", "j", "default") is None


async def test_timeout_fails_closed(cluster: RunningCluster, ca: trustme.CA, hook: Hook) -> None:
    register(cluster, ca, hook, timeoutSeconds=1)

    async def slow(review: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(3)  # the webhook under test is slow on purpose (not a wait)
        return await allow_unless_forbidden(review)

    hook.decide = slow
    answer = await post(cluster, job("j"))
    assert answer.status_code == 500
    assert "context deadline exceeded" in answer.json()["message"]


async def test_untrusted_certificate_fails_closed(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook
) -> None:
    other = trustme.CA()
    register(
        cluster,
        ca,
        hook,
        clientConfig={
            "service": {"namespace": "hooks", "name": "hook", "path": "/validate"},
            "caBundle": base64.b64encode(other.cert_pem.bytes()).decode(),
        },
    )
    answer = await post(cluster, job("j"))
    assert answer.status_code == 500
    assert "CERTIFICATE_VERIFY_FAILED" in answer.json()["message"]


async def test_url_client_config_checks_the_name_in_the_url(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook
) -> None:
    """A URL webhook is verified for the URL's host: the certificate names hook.hooks.svc,
    not 127.0.0.1, so a real API server refuses the call too."""
    caBundle = base64.b64encode(ca.cert_pem.bytes()).decode()
    register(cluster, ca, hook, clientConfig={"url": f"{hook.url}/validate", "caBundle": caBundle})
    answer = await post(cluster, job("j"))
    assert answer.status_code == 500
    assert "certificate" in answer.json()["message"].lower()


async def test_wrong_uid_in_the_answer_fails_closed(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook
) -> None:
    async def wrong_uid(review: dict[str, Any]) -> dict[str, Any]:
        answer = await allow_unless_forbidden(review)
        answer["response"]["uid"] = "not-the-request"
        return answer

    register(cluster, ca, hook)
    hook.decide = wrong_uid
    answer = await post(cluster, job("j"))
    assert answer.status_code == 500
    assert "expected response.uid" in answer.json()["message"]


@pytest.mark.parametrize(
    ("selectors", "called"),
    [
        ({"objectSelector": {"matchLabels": {"team": "a"}}}, True),
        ({"objectSelector": {"matchLabels": {"team": "b"}}}, False),
        ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}}}, True),
        ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}}, False),
    ],
    ids=["object-match", "object-miss", "namespace-match", "namespace-miss"],
)
async def test_selectors_decide_who_is_called(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook, selectors: dict[str, Any], called: bool
) -> None:
    register(cluster, ca, hook, **selectors)
    answer = await post(cluster, job("j", "forbidden"))
    assert answer.status_code == (403 if called else 201)
    assert bool(hook.reviews) is called


async def test_denial_without_code_or_message(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook
) -> None:
    async def bare_no(review: dict[str, Any]) -> dict[str, Any]:
        response = {"uid": review["request"]["uid"], "allowed": False}
        return {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        }

    register(cluster, ca, hook)
    hook.decide = bare_no
    answer = await post(cluster, job("j"))
    assert answer.status_code == 400
    assert answer.json()["message"] == (
        'admission webhook "jobs.hooks.example" denied the request without explanation'
    )


async def test_delete_is_sent_with_the_old_object_and_can_be_refused(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook
) -> None:
    async def no_deleting(review: dict[str, Any]) -> dict[str, Any]:
        request = review["request"]
        response = {"uid": request["uid"], "allowed": request["operation"] != "DELETE"}
        if not response["allowed"]:
            response["status"] = {"code": 403, "message": "keep it"}
        return {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        }

    register(cluster, ca, hook, rules=[rule(operations=["CREATE", "DELETE"])])
    hook.decide = no_deleting
    assert (await post(cluster, job("kept"))).status_code == 201
    async with httpx.AsyncClient(base_url=cluster.url) as http:
        answer = await http.delete(f"{JOBS_PATH}/kept")
    assert answer.status_code == 403
    assert answer.json()["message"].endswith("denied the request: keep it")
    request = hook.reviews[-1]["request"]
    assert request["operation"] == "DELETE" and request["object"] is None
    assert request["oldObject"]["metadata"]["name"] == "kept"
    assert request["options"]["kind"] == "DeleteOptions"
    assert cluster.get("warmpool.dev/v1alpha1", "GenerationJob", "kept", "default") is not None


async def test_webhook_warnings_become_warning_headers(
    cluster: RunningCluster, ca: trustme.CA, hook: Hook
) -> None:
    async def warn(review: dict[str, Any]) -> dict[str, Any]:
        answer = await allow_unless_forbidden(review)
        answer["response"]["warnings"] = ['muse "x" is missing', "second"]
        return answer

    register(cluster, ca, hook)
    hook.decide = warn
    answer = await post(cluster, job("warned"))
    assert answer.status_code == 201
    assert answer.headers.get_list("Warning") == [
        '299 - "muse \\"x\\" is missing"',
        '299 - "second"',
    ]
