"""A local HTTP server that serves model files the way Hugging Face and Civitai do.

Two listeners: the "origin" on 127.0.0.1 and a "CDN" on 127.0.0.2 (another host: curl must
not send the bearer token there). Each route is a :class:`Route`: the bytes, an optional
token, a redirect to the CDN, a slow or stalling transfer, or a fixed status (404, 500).
Ranges (``bytes=N-``) are honoured unless ``ranges=False``. Every request is recorded
(host, path, Range and Authorization headers) so tests can assert who saw the token.

Used from sync tests (``with ModelServer() as s``) and async ones alike: it runs in threads.
"""

from __future__ import annotations

import hashlib
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    data: bytes = b""
    token: str | None = None
    #: Redirect (302) to this path on the CDN listener, which serves it without a token.
    redirect_to_cdn: str | None = None
    status: int | None = None
    ranges: bool = True
    #: Seconds between chunks of ``chunk`` bytes (slow transfer).
    delay: float = 0.0
    chunk: int = 64 * 1024
    #: Send this many bytes, then hold the connection without sending more (stall).
    stall_after: int | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Seen:
    host: str
    path: str
    authorization: str | None
    range: str | None


@dataclass
class ModelServer:
    routes: dict[str, Route] = field(default_factory=dict)
    cdn_routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)
    #: Transfers in flight now, and the most at once since start.
    active: int = 0
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        host, port = self._servers[0].server_address[:2]
        return f"http://{host}:{port}{path}"

    def cdn_url(self, path: str) -> str:
        host, port = self._servers[1].server_address[:2]
        return f"http://{host}:{port}{path}"

    def add(self, path: str, route: Route) -> str:
        """Serve ``route`` at ``path`` on the origin (its CDN part too); return its URL."""
        self.routes[path] = route
        if route.redirect_to_cdn is not None:
            self.cdn_routes[route.redirect_to_cdn] = Route(
                data=route.data,
                ranges=route.ranges,
                delay=route.delay,
                chunk=route.chunk,
                stall_after=route.stall_after,
            )
        return self.url(path)

    def start(self) -> ModelServer:
        for host, routes in (("127.0.0.1", self.routes), ("127.0.0.2", self.cdn_routes)):
            server = ThreadingHTTPServer((host, 0), _handler(self, routes, host))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        self._stop.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()


def _handler(
    owner: ModelServer, routes: dict[str, Route], host: str
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            owner.seen.append(
                Seen(host, path, self.headers.get("Authorization"), self.headers.get("Range"))
            )
            route = routes.get(path)
            if route is None:
                return self._plain(404, b"not found")
            if route.status is not None:
                return self._plain(route.status, b"failure")
            if route.token is not None and self.headers.get("Authorization") != (
                f"Bearer {route.token}"
            ):
                return self._plain(401, b"unauthorized")
            if route.redirect_to_cdn is not None:
                self.send_response(302)
                self.send_header("Location", owner.cdn_url(route.redirect_to_cdn))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return self._file(route)

        def _hold(self) -> None:
            while not owner._stop.is_set():
                readable, _, _ = select.select([self.connection], [], [], 0.1)
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    return  # the client closed the connection

        def _plain(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _file(self, route: Route) -> None:
            data, start = route.data, 0
            wanted = self.headers.get("Range")
            if route.ranges and wanted and wanted.startswith("bytes=") and wanted.endswith("-"):
                start = int(wanted[len("bytes=") : -1])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
                if route.ranges:
                    self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            sent = 0
            body = data[start:]
            with owner._lock:
                owner.active += 1
                owner.peak = max(owner.peak, owner.active)
            try:
                while sent < len(body):
                    if route.stall_after is not None and start + sent >= route.stall_after:
                        self._hold()  # send nothing more until the client goes away
                        return
                    end = sent + route.chunk
                    if route.stall_after is not None:
                        end = min(end, route.stall_after - start)
                    self.wfile.write(body[sent:end])
                    self.wfile.flush()
                    sent = end
                    if route.delay and sent < len(body):
                        time.sleep(route.delay)
            except (BrokenPipeError, ConnectionResetError):
                return
            finally:
                with owner._lock:
                    owner.active -= 1

    return Handler
