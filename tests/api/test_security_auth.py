"""Issue 15, identity and access: each finding of the security read, as a test (T5)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from warmpool.api.auth import SESSION_COOKIE
from warmpool.api.settings import StudioSettings
from warmpool.operator.adapters import kube

NS = "default"
GOOD = {"pool": "sdxl", "prompt": "a lighthouse at dusk"}
STRONG = {
    "ada": "3f9c1a7be2d84c06a5b1e9f7d2c4a8b6e1f3d5c7a9b2e4f6",
    "bob": "b7e2a9c4f1d6e3b8a5c2f9d4e7b1a6c3f8d5e2b9a4c7f1d6",
}
PROXY = ("10.0.0.7", 40000)
Studio = Any


async def put_tokens(kube_client: kube.KubeClient, tokens: dict[str, str]) -> None:
    data = {user: base64.b64encode(tok.encode()).decode() for user, tok in tokens.items()}
    secret = {"metadata": {"name": "warmpool-studio-tokens"}, "type": "Opaque", "data": data}
    await kube_client.create(kube.SECRETS, secret, NS)


@pytest.fixture
async def tokens(kube_client: kube.KubeClient) -> dict[str, str]:
    await put_tokens(kube_client, STRONG)
    return STRONG


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {STRONG[user]}"}


# ---------------------------------------------------------------- defaults


def test_the_code_default_is_not_auth_none() -> None:
    assert StudioSettings(_env_file=None).studio_auth != "none"  # type: ignore[call-arg]


async def test_weak_tokens_are_refused_at_start_up(
    studio: Studio, kube_client: kube.KubeClient
) -> None:
    await put_tokens(kube_client, {"ada": "hunter2", "bob": STRONG["bob"]})
    with pytest.raises(RuntimeError, match="ada") as caught:
        await studio(studio_auth="token")
    assert "hunter2" not in str(caught.value)


# ---------------------------------------------------------------- proxy mode


async def test_proxy_mode_refuses_the_other_header_family(studio: Studio) -> None:
    """oauth2-proxy in reverse-proxy mode sets X-Forwarded-*; a client-supplied
    X-Auth-Request-User passes through it and must not win (nor be accepted at all)."""
    http = await studio(client_addr=PROXY, studio_auth="proxy", studio_proxy_cidrs=["10.0.0.0/24"])
    forged = {
        "X-Forwarded-User": "mallory",
        "X-Auth-Request-User": "root",
        "X-Auth-Request-Groups": "warmpool-admins",
    }
    r = await http.get("/api/v1/me", headers=forged)
    assert r.status_code == 403, r.text
    only_forged = {"X-Auth-Request-User": "root", "X-Auth-Request-Groups": "warmpool-admins"}
    assert (await http.get("/api/v1/me", headers=only_forged)).status_code == 403
    me = await http.get("/api/v1/me", headers={"X-Forwarded-User": "carl"})
    assert me.status_code == 200
    assert me.json()["name"] == "carl"
    assert me.json()["admin"] is False
    admin = {"X-Forwarded-User": "root", "X-Forwarded-Groups": "staff,warmpool-admins"}
    assert (await http.get("/api/v1/me", headers=admin)).json()["admin"] is True


async def test_proxy_mode_with_the_other_family_configured(studio: Studio) -> None:
    http = await studio(
        client_addr=PROXY,
        studio_auth="proxy",
        studio_proxy_cidrs=["10.0.0.0/24"],
        studio_proxy_headers="X-Auth-Request",
    )
    assert (await http.get("/api/v1/me", headers={"X-Forwarded-User": "x"})).status_code == 403
    ok = await http.get("/api/v1/me", headers={"X-Auth-Request-User": "ada"})
    assert ok.json()["name"] == "ada"


class Issuer:
    """An OIDC issuer's signing key and its JWKS, served over HTTP on a loopback port."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwks = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = jwks.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": "https://login.example.org",
            "aud": "warmpool-studio",
            "email": "ada@example.org",
            "groups": ["staff"],
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": "k1"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    it = Issuer()
    yield it
    it.close()


async def test_proxy_mode_verifies_the_proxys_signed_token(studio: Studio, issuer: Issuer) -> None:
    http = await studio(
        client_addr=PROXY,
        studio_auth="proxy",
        studio_proxy_cidrs=["10.0.0.0/24"],
        studio_proxy_jwks_url=issuer.url,
        studio_proxy_jwt_issuer="https://login.example.org",
        studio_proxy_jwt_audience="warmpool-studio",
    )

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "X-Forwarded-User": "ada@example.org"}

    me = await http.get("/api/v1/me", headers=auth(issuer.token()))
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "ada@example.org"
    admin = await http.get("/api/v1/me", headers=auth(issuer.token(groups=["warmpool-admins"])))
    assert admin.json()["admin"] is True
    # the header alone is not believed when a token is required
    alone = await http.get("/api/v1/me", headers={"X-Forwarded-User": "ada@example.org"})
    assert alone.status_code == 401
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "forged signature": issuer.token(key=other_key),
        "expired": issuer.token(exp=int(time.time()) - 120),
        "other audience": issuer.token(aud="someone-else"),
        "other issuer": issuer.token(iss="https://evil.example.org"),
        "not a jwt": "abc.def.ghi",
    }
    for why, token in bad.items():
        r = await http.get("/api/v1/me", headers=auth(token))
        assert r.status_code == 401, why
    # oauth2-proxy --pass-access-token: the token in X-Forwarded-Access-Token works too,
    # and an opaque access token next to the ID token does not spoil it
    via_header = {"X-Forwarded-Access-Token": issuer.token()}
    assert (await http.get("/api/v1/me", headers=via_header)).status_code == 200
    both = {**auth(issuer.token()), "X-Forwarded-Access-Token": "opaque-access-token"}
    assert (await http.get("/api/v1/me", headers=both)).status_code == 200
    # a header naming someone else than the token is refused
    mismatch = {**auth(issuer.token()), "X-Forwarded-User": "root"}
    assert (await http.get("/api/v1/me", headers=mismatch)).status_code == 403


# ---------------------------------------------------------------- sessions


async def test_the_session_cookie_does_not_hold_the_token(studio: Studio, tokens: Any) -> None:
    http = await studio(studio_auth="token")
    r = await http.post("/api/v1/session", json={"token": STRONG["bob"]})
    assert r.status_code == 204
    value = http.cookies[SESSION_COOKIE]
    assert STRONG["bob"] not in value
    assert STRONG["bob"] not in r.headers["set-cookie"]
    assert (await http.get("/api/v1/me")).json()["name"] == "bob"
    # the cookie value is not a bearer token either
    http.cookies.clear()
    as_bearer = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {value}"})
    assert as_bearer.status_code == 401
    # a tampered cookie is refused
    tampered = value[:-4] + ("0000" if not value.endswith("0000") else "1111")
    http.cookies.set(SESSION_COOKIE, tampered)
    assert (await http.get("/api/v1/me")).status_code == 401


async def test_sign_out_revokes_the_session(studio: Studio, tokens: Any) -> None:
    http = await studio(studio_auth="token")
    await http.post("/api/v1/session", json={"token": STRONG["ada"]})
    stolen = http.cookies[SESSION_COOKIE]
    assert (await http.delete("/api/v1/session")).status_code == 204
    http.cookies.clear()
    http.cookies.set(SESSION_COOKIE, stolen)
    assert (await http.get("/api/v1/me")).status_code == 401


async def test_the_cookie_is_secure_behind_a_tls_proxy(studio: Studio, tokens: Any) -> None:
    http = await studio(studio_auth="token", studio_proxy_cidrs=["127.0.0.0/8"])
    r = await http.post(
        "/api/v1/session", json={"token": STRONG["ada"]}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "secure" in r.headers["set-cookie"].lower()
    plain = await http.post("/api/v1/session", json={"token": STRONG["ada"]})
    assert "secure" not in plain.headers["set-cookie"].lower()


async def test_x_forwarded_proto_from_elsewhere_is_ignored(studio: Studio, tokens: Any) -> None:
    http = await studio(studio_auth="token", studio_proxy_cidrs=["10.0.0.0/24"])
    r = await http.post(
        "/api/v1/session", json={"token": STRONG["ada"]}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "secure" not in r.headers["set-cookie"].lower()
    always = await studio(studio_auth="token", studio_secure_cookies=True)
    r = await always.post("/api/v1/session", json={"token": STRONG["ada"]})
    assert "secure" in r.headers["set-cookie"].lower()


async def test_failed_sign_ins_are_rate_limited_per_client(studio: Studio, tokens: Any) -> None:
    http = await studio(studio_auth="token", studio_signin_failures_per_minute=3)
    for _ in range(3):
        assert (await http.post("/api/v1/session", json={"token": "x" * 40})).status_code == 401
    r = await http.post("/api/v1/session", json={"token": STRONG["ada"]})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    guessed = await http.get("/api/v1/me", headers=bearer("ada"))
    assert guessed.status_code == 429  # bearer guesses count too
    # another client is not blocked
    other = await studio(
        client_addr=("127.0.0.9", 1), studio_auth="token", studio_signin_failures_per_minute=3
    )
    assert (await other.post("/api/v1/session", json={"token": STRONG["ada"]})).status_code == 204


async def test_failed_sign_ins_are_rate_limited_per_name(studio: Studio, tokens: Any) -> None:
    http = await studio(studio_auth="token", studio_signin_failures_per_minute=3)
    # three clients (behind the trusted proxy) guess ada's token: ada is locked, bob is not
    for i in range(3):
        r = await http.post(
            "/api/v1/session",
            json={"name": "ada", "token": "z" * 40},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        )
        assert r.status_code == 401
    r = await http.post(
        "/api/v1/session",
        json={"name": "ada", "token": STRONG["ada"]},
        headers={"X-Forwarded-For": "203.0.113.77"},
    )
    assert r.status_code == 429
    bob = await http.post(
        "/api/v1/session",
        json={"name": "bob", "token": STRONG["bob"]},
        headers={"X-Forwarded-For": "203.0.113.78"},
    )
    assert bob.status_code == 204
    wrong_name = await http.post(
        "/api/v1/session",
        json={"name": "bob", "token": STRONG["ada"]},
        headers={"X-Forwarded-For": "203.0.113.79"},
    )
    assert wrong_name.status_code == 401  # the token must belong to the name given


# ---------------------------------------------------------------- cross-site requests


async def test_cross_site_requests_are_refused(studio: Studio, tokens: Any, png: Any) -> None:
    http = await studio(studio_auth="token")
    await http.post("/api/v1/session", json={"token": STRONG["ada"]})
    evil = {"Origin": "https://evil.example"}
    assert (await http.post("/api/v1/generations", json=GOOD, headers=evil)).status_code == 403
    site = {"Sec-Fetch-Site": "cross-site"}
    assert (await http.post("/api/v1/generations", json=GOOD, headers=site)).status_code == 403
    files = {"file": ("ref.png", png(), "image/png")}
    up = await http.post("/api/v1/uploads", files=files, headers=evil)
    assert up.status_code == 403
    up = await http.post("/api/v1/uploads", files=files, headers={"Sec-Fetch-Site": "same-site"})
    assert up.status_code == 403
    assert (await http.delete("/api/v1/session", headers=evil)).status_code == 403
    # same origin, and clients that are not browsers, pass
    same = {"Origin": "http://studio.test", "Sec-Fetch-Site": "same-origin"}
    assert (await http.post("/api/v1/generations", json=GOOD, headers=same)).status_code == 201
    up = await http.post("/api/v1/uploads", files=files, headers=same)
    assert up.status_code == 201
    assert (await http.post("/api/v1/generations", json=GOOD)).status_code == 201
    # behind a TLS ingress that is not a trusted proxy the studio sees http, the browser
    # says https: the same host is the same site (the page must keep working)
    tls = {"Origin": "https://studio.test", "Sec-Fetch-Site": "same-origin"}
    assert (await http.post("/api/v1/generations", json=GOOD, headers=tls)).status_code == 201
    other_port = {"Origin": "http://studio.test:8443"}
    assert (
        await http.post("/api/v1/generations", json=GOOD, headers=other_port)
    ).status_code == 403
    # reading is not a state change
    assert (await http.get("/api/v1/me", headers=evil)).status_code == 200


# ---------------------------------------------------------------- uploads


async def test_upload_ownership_is_by_owner_not_by_a_colliding_label(
    studio: Studio, png: Any
) -> None:
    """``owner_label`` hashes names that are not label values into ``u-<hash>``; a user
    who picks that very string as a name must not get the other user's uploads."""
    from warmpool.api.auth import owner_label

    victim = "ada@example.org"
    crafted = owner_label(victim)
    assert crafted.startswith("u-")
    http = await studio(client_addr=PROXY, studio_auth="proxy", studio_proxy_cidrs=["10.0.0.0/24"])
    files = {"file": ("ref.png", png(), "image/png")}
    up = await http.post("/api/v1/uploads", files=files, headers={"X-Forwarded-User": victim})
    key = up.json()["key"]
    assert key.startswith(f"uploads/{NS}/"), key  # namespaced
    r = await http.post(
        "/api/v1/generations",
        json={**GOOD, "referenceImage": key, "denoise": 0.5},
        headers={"X-Forwarded-User": crafted},
    )
    assert r.status_code == 422, r.text
    mine = await http.post(
        "/api/v1/generations",
        json={**GOOD, "referenceImage": key, "denoise": 0.5},
        headers={"X-Forwarded-User": victim},
    )
    assert mine.status_code == 201, mine.text
