"""Auth modes, ownership and rate limits (T5)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from warmpool.api.auth import SESSION_COOKIE
from warmpool.api.limits import RateLimiter
from warmpool.operator.adapters import kube

NS = "default"
GOOD = {"pool": "sdxl", "prompt": "a lighthouse at dusk"}
TOKENS = {
    "ada": "tok-ada-0123456789abcdef0123456789abcdef",
    "bob": "tok-bob-fedcba9876543210fedcba9876543210",
}
Studio = Any
Driver = Any


@pytest.fixture
async def tokens(kube_client: kube.KubeClient) -> dict[str, str]:
    data = {user: base64.b64encode(tok.encode()).decode() for user, tok in TOKENS.items()}
    secret = {"metadata": {"name": "warmpool-studio-tokens"}, "type": "Opaque", "data": data}
    await kube_client.create(kube.SECRETS, secret, NS)
    return TOKENS


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


async def test_token_mode_requires_a_valid_token(studio: Studio, tokens: Any) -> None:
    http = await studio(studio_auth="token")
    assert (await http.get("/api/v1/me")).status_code == 401
    bad = await http.get("/api/v1/me", headers={"Authorization": "Bearer tok-ada-wrong"})
    assert bad.status_code == 401
    assert bad.headers["WWW-Authenticate"] == "Bearer"
    assert "tok-ada" not in bad.text
    me = await http.get("/api/v1/me", headers=bearer("ada"))
    assert me.json()["name"] == "ada"
    assert me.json()["admin"] is False


async def test_health_needs_no_token(studio: Studio, tokens: Any) -> None:
    http = await studio(studio_auth="token")
    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/readyz")).status_code == 200
    assert (await http.get("/metrics")).status_code == 200


async def test_session_cookie_signs_in(studio: Studio, tokens: Any) -> None:
    http = await studio(studio_auth="token")
    refused = await http.post("/api/v1/session", json={"token": "nope"})
    assert refused.status_code == 401
    r = await http.post("/api/v1/session", json={"token": TOKENS["bob"]})
    assert r.status_code == 204
    cookie = r.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert (await http.get("/api/v1/me")).json()["name"] == "bob"
    assert (await http.delete("/api/v1/session")).status_code == 204


async def test_user_a_cannot_touch_user_b_things(
    studio: Studio, tokens: Any, drive: Driver, png: Any, kube_client: kube.KubeClient
) -> None:
    http = await studio(studio_auth="token")
    job = (await http.post("/api/v1/generations", json=GOOD, headers=bearer("bob"))).json()
    name = job["name"]
    await drive.succeed(name, png())
    muse = await http.post(
        "/api/v1/muses", json={"displayName": "B", "age": 30}, headers=bearer("bob")
    )
    muse_name = muse.json()["name"]
    a = bearer("ada")

    assert (await http.get(f"/api/v1/generations/{name}", headers=a)).status_code == 404
    assert (await http.get(f"/api/v1/generations/{name}/events", headers=a)).status_code == 404
    download = await http.get(f"/api/v1/generations/{name}/outputs/0", headers=a)
    assert download.status_code == 404
    thumb = await http.get(f"/api/v1/generations/{name}/outputs/0/thumbnail", headers=a)
    assert thumb.status_code == 404
    assert (await http.delete(f"/api/v1/generations/{name}", headers=a)).status_code == 404
    assert await kube_client.get(kube.GENERATIONJOBS, name, NS) is not None
    assert (await http.get("/api/v1/generations", headers=a)).json()["total"] == 0
    assert (await http.get("/api/v1/gallery", headers=a)).json()["total"] == 0
    assert (await http.get(f"/api/v1/muses/{muse_name}", headers=a)).status_code == 404
    assert (await http.delete(f"/api/v1/muses/{muse_name}", headers=a)).status_code == 404
    put = await http.put(
        f"/api/v1/muses/{muse_name}", json={"displayName": "X", "age": 30}, headers=a
    )
    assert put.status_code == 404
    using = await http.post("/api/v1/generations", json={**GOOD, "museRef": muse_name}, headers=a)
    assert using.status_code == 422
    assert (await http.get("/api/v1/muses", headers=a)).json()["total"] == 0
    # and bob still can
    b = bearer("bob")
    assert (await http.get(f"/api/v1/generations/{name}/outputs/0", headers=b)).status_code == 200
    assert (await http.get(f"/api/v1/muses/{muse_name}", headers=b)).status_code == 200


async def test_upload_keys_of_another_user_are_refused(
    studio: Studio, tokens: Any, png: Any
) -> None:
    http = await studio(studio_auth="token")
    files = {"file": ("ref.png", png(), "image/png")}
    key = (await http.post("/api/v1/uploads", files=files, headers=bearer("bob"))).json()["key"]
    r = await http.post(
        "/api/v1/generations",
        json={**GOOD, "referenceImage": key, "denoise": 0.5},
        headers=bearer("ada"),
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "referenceImage"]
    mine = await http.post(
        "/api/v1/generations",
        json={**GOOD, "referenceImage": key, "denoise": 0.5},
        headers=bearer("bob"),
    )
    assert mine.status_code == 201, mine.text


PROXY = ("10.0.0.7", 40000)
ELSEWHERE = ("192.168.9.9", 40000)


async def test_proxy_mode_trusts_only_the_proxy(studio: Studio) -> None:
    http = await studio(client_addr=PROXY, studio_auth="proxy", studio_proxy_cidrs=["10.0.0.0/24"])
    me = await http.get("/api/v1/me", headers={"X-Forwarded-User": "ada@example.org"})
    assert me.status_code == 200
    assert me.json() == {**me.json(), "name": "ada@example.org", "admin": False}
    fwd = await http.get("/api/v1/me", headers={"X-Forwarded-User": "carl"})
    assert fwd.json()["name"] == "carl"
    assert (await http.get("/api/v1/me")).status_code == 401

    forged = await studio(
        client_addr=ELSEWHERE, studio_auth="proxy", studio_proxy_cidrs=["10.0.0.0/24"]
    )
    r = await forged.get("/api/v1/me", headers={"X-Forwarded-User": "ada@example.org"})
    assert r.status_code == 403
    assert (await forged.get("/api/v1/me")).status_code == 401


async def test_proxy_admin_group_sees_everything(studio: Studio) -> None:
    http = await studio(client_addr=PROXY, studio_auth="proxy", studio_proxy_cidrs=["10.0.0.0/24"])
    bob = {"X-Forwarded-User": "bob"}
    admin = {"X-Forwarded-User": "root", "X-Forwarded-Groups": "staff,warmpool-admins"}
    name = (await http.post("/api/v1/generations", json=GOOD, headers=bob)).json()["name"]
    me = (await http.get("/api/v1/me", headers=admin)).json()
    assert me["admin"] is True
    assert (await http.get(f"/api/v1/generations/{name}", headers=admin)).status_code == 200
    listed = await http.get("/api/v1/generations", params={"all": "true"}, headers=admin)
    assert [i["name"] for i in listed.json()["items"]] == [name]
    mine_only = await http.get("/api/v1/generations", headers=admin)
    assert mine_only.json()["total"] == 0
    assert (await http.delete(f"/api/v1/generations/{name}", headers=admin)).status_code == 204


async def test_requests_per_minute_answer_429_with_retry_after(studio: Studio) -> None:
    http = await studio(studio_requests_per_minute=3)
    for _ in range(3):
        assert (await http.get("/api/v1/me")).status_code == 200
    r = await http.get("/api/v1/me")
    assert r.status_code == 429
    # Counted per minute, the last minute's count weighted (limits.py): at most the rest of
    # this minute and most of the next.
    assert 1 <= int(r.headers["Retry-After"]) <= 120
    assert (await http.get("/healthz")).status_code == 200  # not rate-limited


async def test_rate_limiter_window_slides() -> None:
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert await limiter.hit("a") == 0
    now[0] = 30.0
    assert await limiter.hit("a") == 0
    assert await limiter.hit("a") == 60  # t=90: half of the two still counted
    assert await limiter.hit("b") == 0  # per user
    now[0] = 60.0  # the two of the last window still count in full
    assert await limiter.hit("a") == 30
    now[0] = 90.0  # half of them: one place
    assert await limiter.hit("a") == 0
    assert await limiter.hit("a") > 0
