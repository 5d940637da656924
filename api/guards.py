"""The studio's outer guard: one ASGI middleware in front of everything.

In order, for each HTTP request:

1. ``/metrics`` reached through a proxy (``X-Forwarded-For``, ``Forwarded``,
   ``X-Real-IP``: every ingress adds one) answers 404: metrics are for Prometheus
   scraping the pod, not for the internet.
2. Cross-site state changes are refused (403): for POST/PUT/PATCH/DELETE a
   ``Sec-Fetch-Site`` other than ``same-origin``/``none``, or an ``Origin`` whose host and
   port differ from the studio's (``Host``, or ``X-Forwarded-Host`` from a trusted proxy,
   see :mod:`peers`), is refused. Requests with neither header (curl, scripts with a
   bearer token) pass: a
   browser always sends at least one of them on a cross-origin POST. Together with the
   ``SameSite=Strict`` cookie this is the OWASP "verify origin with standard headers"
   defence, and it covers the multipart upload, which no CORS preflight protects.
3. Token and oidc modes: an ``/api/`` state change carrying neither a bearer token nor the
   session cookie is refused (401) before its body is read.
4. Bodies are limited by Starlette's ``RequestBodyLimitMiddleware``: a
   ``Content-Length`` above the limit is refused (413) before a byte is read; a body
   without one is counted as it arrives and refused once past the limit. The limit is
   ``WARMPOOL_STUDIO_BODY_MAX_BYTES``, and for the upload route the upload limit plus
   room for the multipart framing.
5. Every answer gets the usual security headers; answers that set no
   ``Content-Security-Policy`` themselves (downloads set ``sandbox``) get the page's
   strict one: scripts, styles, images and connections from the studio's origin only,
   no inline script, no framing, no plugins. ``Strict-Transport-Security`` is added
   when the outside scheme is https.
"""

from __future__ import annotations

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warmpool.api.auth import SESSION_COOKIE
from warmpool.api.peers import Peers
from warmpool.api.settings import StudioSettings

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAME_SITE = frozenset({"same-origin", "none"})
PROXY_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip")
UPLOAD_PATH = "/api/v1/uploads"
MULTIPART_ROOM = 64 * 1024
SIGN_IN_PATH = "/api/v1/session"

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000")


def _host_of(origin: str) -> str:
    """``host[:port]`` of an Origin. The scheme is not compared: behind a TLS ingress that
    is not a trusted proxy the studio sees http where the browser says https, and the
    same host is the same site (``null`` and garbage never equal a host)."""
    _, sep, rest = origin.strip().lower().partition("://")
    return rest.rstrip("/") if sep else ""


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = ('{"detail":"' + detail + '"}').encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """The middleware (``app.add_middleware(Guard, settings=...)``)."""

    def __init__(self, app: ASGIApp, settings: StudioSettings) -> None:
        self.app = app
        self.settings = settings
        self.peers = Peers(settings.studio_proxy_cidrs)
        self.limited = RequestBodyLimitMiddleware(app, settings.studio_body_max_bytes)
        self.uploads = RequestBodyLimitMiddleware(
            app, settings.studio_upload_max_bytes + MULTIPART_ROOM
        )

    def _refusal(self, scope: Scope, conn: HTTPConnection) -> tuple[int, str] | None:
        path: str = scope["path"]
        method: str = scope["method"]
        headers = dict(scope["headers"])
        if path == "/metrics" and any(h in headers for h in PROXY_HEADERS):
            return 404, "Not Found"
        if method in UNSAFE:
            site = conn.headers.get("sec-fetch-site")
            if site is not None and site.lower() not in SAME_SITE:
                return 403, "cross-site requests are refused"
            origin = conn.headers.get("origin")
            if origin is not None and _host_of(origin) != self.peers.host(conn):
                return 403, "cross-origin requests are refused"
            anonymous = b"authorization" not in headers and SESSION_COOKIE not in conn.cookies
            if (
                self.settings.studio_auth in ("token", "oidc")
                and anonymous
                and path.startswith("/api/")
                and path != SIGN_IN_PATH
            ):
                return 401, "a bearer token is required"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        https = self.peers.scheme(conn) == "https"
        extra = [*HEADERS, HSTS] if https else list(HEADERS)
        refusal = self._refusal(scope, conn)
        if refusal is not None:
            status, detail = refusal
            auth = [(b"www-authenticate", b"Bearer")] if status == 401 else []
            await _answer(send, status, detail, [*extra, *auth])
            return

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                added = [(k, v) for k, v in extra if k not in present]
                if b"content-security-policy" not in present:
                    added.append((b"content-security-policy", PAGE_CSP.encode()))
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        limited = self.uploads if scope["path"] == UPLOAD_PATH else self.limited
        await limited(scope, receive, guarded_send)
