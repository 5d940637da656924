"""The chart's accounts and payments: auth mode oidc and Stripe reach the studio's
environment, every secret through a secretKeyRef to an existing Secret, never inlined."""

from __future__ import annotations

from typing import Any

import pytest

from warmpool.api.settings import StudioSettings

OIDC = {
    "mode": "oidc",
    "oidc": {
        "issuer": "https://login.example.com/realms/studio",
        "clientId": "warmpool-studio",
        "clientSecret": {"name": "warmpool-oidc", "key": "client-secret"},
        "scopes": "openid email profile groups",
        "groupsClaim": "roles",
        "redirectUrl": "https://studio.example.com/auth/callback",
        "postLogoutUrl": "https://studio.example.com/",
    },
    "adminGroup": "studio-admins",
}
PAYMENTS = {"enabled": True, "existingSecret": "warmpool-stripe", "packs": [10, 25.5],
            "markup": 1.5, "currency": "eur"}  # fmt: skip


def studio_env(chart: Any, studio: dict[str, Any]) -> list[dict[str, Any]]:
    deployment = chart.one(chart.render({"studio": studio}), "Deployment", "-studio")
    env: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


def test_oidc_and_payments_reach_the_studio_with_secrets_by_reference(chart: Any) -> None:
    env = studio_env(chart, {"auth": OIDC, "payments": PAYMENTS})
    values = {e["name"]: e.get("value") for e in env}
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
    assert values["WARMPOOL_STUDIO_AUTH"] == "oidc"
    assert values["WARMPOOL_STUDIO_OIDC_ISSUER"] == "https://login.example.com/realms/studio"
    assert values["WARMPOOL_STUDIO_OIDC_CLIENT_ID"] == "warmpool-studio"
    assert values["WARMPOOL_STUDIO_OIDC_SCOPES"] == "openid email profile groups"
    assert values["WARMPOOL_STUDIO_OIDC_GROUPS_CLAIM"] == "roles"
    assert values["WARMPOOL_STUDIO_ADMIN_GROUP"] == "studio-admins"
    assert values["WARMPOOL_STUDIO_OIDC_REDIRECT_URL"] == "https://studio.example.com/auth/callback"
    assert values["WARMPOOL_STUDIO_OIDC_POST_LOGOUT_URL"] == "https://studio.example.com/"
    assert values["WARMPOOL_STUDIO_PAYMENTS"] == "true"
    assert values["WARMPOOL_STUDIO_CREDIT_PACKS"] == "[10,25.5]"
    assert values["WARMPOOL_STUDIO_CREDIT_MARKUP"] == "1.5"
    assert values["WARMPOOL_STUDIO_CURRENCY"] == "eur"
    assert refs == {
        "WARMPOOL_STUDIO_OIDC_CLIENT_SECRET": {"name": "warmpool-oidc", "key": "client-secret"},
        "WARMPOOL_STUDIO_STRIPE_SECRET_KEY": {"name": "warmpool-stripe", "key": "secret-key"},
        "WARMPOOL_STUDIO_STRIPE_PUBLISHABLE_KEY": {
            "name": "warmpool-stripe", "key": "publishable-key"},
        "WARMPOOL_STUDIO_STRIPE_WEBHOOK_SECRET": {
            "name": "warmpool-stripe", "key": "webhook-secret"},
    }  # fmt: skip
    # Nothing secret is inlined (the SQLite records URL is a file path, no password).
    inlined = {
        e["name"] for e in env if "value" in e and ("SECRET" in e["name"] or "_KEY" in e["name"])
    }
    assert not inlined
    # Every name the chart sets is a studio setting.
    fields = {f"WARMPOOL_{name.upper()}" for name in StudioSettings.model_fields}
    assert {e["name"] for e in env if e["name"].startswith("WARMPOOL_STUDIO_")} <= fields


def test_a_public_client_and_no_payments(chart: Any) -> None:
    auth = {**OIDC, "oidc": {**OIDC["oidc"], "clientSecret": {"name": "", "key": "x"}}}
    names = {e["name"] for e in studio_env(chart, {"auth": auth})}
    assert "WARMPOOL_STUDIO_OIDC_CLIENT_SECRET" not in names
    assert not {n for n in names if "STRIPE" in n or "PAYMENTS" in n or "CREDIT" in n}


@pytest.mark.parametrize(
    ("studio", "named"),
    [
        pytest.param({"auth": {"mode": "oidc"}}, "issuer", id="oidc-without-issuer"),
        pytest.param(
            {"auth": {**OIDC, "oidc": {**OIDC["oidc"], "clientSecret": "s3cr3t"}}},
            "clientSecret",
            id="inline-client-secret",
        ),
        pytest.param({"payments": {"enabled": True}}, "existingSecret", id="payments-no-secret"),
        pytest.param(
            {"payments": {**PAYMENTS, "secretKey": "sk_live_x"}},
            "secretKey",
            id="inline-stripe-key",
        ),
        pytest.param({"payments": {**PAYMENTS, "markup": 0.5}}, "markup", id="markup-below-1"),
    ],
)
def test_the_schema_refuses(chart: Any, studio: dict[str, Any], named: str) -> None:
    result = chart.helm("template", "wp", str(chart.path), values={"studio": studio})
    assert result.returncode != 0
    assert named in result.stderr
