"""A real HTTP server on 127.0.0.1, for tests that must go through actual sockets."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

import pytest

from reel.net.fetch import FetchPolicy

Handler = Callable[[BaseHTTPRequestHandler, threading.Event], None]
"""Answers one request; long-running handlers must return soon after the event is set."""


@dataclass
class Seen:
    path: str
    host: str | None


@dataclass
class LoopbackServer:
    """Routes by path; records every request it receives. HTTP/1.0, one request a connection."""

    routes: dict[str, Handler] = field(default_factory=dict[str, Handler])
    seen: list[Seen] = field(default_factory=list[Seen])
    stop: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_length: bool = True,
    ) -> None:
        def handler(req: BaseHTTPRequestHandler, stop: threading.Event) -> None:
            req.send_response(status)
            req.send_header("Content-Type", content_type)
            if content_length:
                req.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                req.send_header(name, value)
            req.end_headers()
            req.wfile.write(body)

        self.routes[path] = handler

    def redirect(self, path: str, location: str, *, status: int = 302) -> None:
        def handler(req: BaseHTTPRequestHandler, stop: threading.Event) -> None:
            req.send_response(status)
            req.send_header("Location", location)
            req.send_header("Content-Length", "0")
            req.end_headers()

        self.routes[path] = handler


class _RequestHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        owner = cast(_Server, self.server).owner
        owner.seen.append(Seen(self.path, self.headers.get("Host")))
        handler = owner.routes.get(self.path)
        try:
            if handler is None:
                self.send_error(404)
            else:
                handler(self, owner.stop)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on us, which is often the point of the test

    do_POST = do_GET  # routes answer any method; POST bodies are left unread

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread: no leaks
    owner: LoopbackServer


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    owner = LoopbackServer()
    httpd = _Server(("127.0.0.1", 0), _RequestHandler)
    httpd.owner = owner
    owner.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield owner
    finally:
        owner.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def loopback_policy() -> FetchPolicy:
    return FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout=5.0)
