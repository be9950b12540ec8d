"""SSRF-safe HTTP requests to user-supplied URLs: downloads (GET) and webhook POSTs.

Each hop is vetted by :func:`reel.net.addresses.check_url` before anything connects. The
request then goes to the one address that was checked, with the real name in the ``Host``
header and in TLS SNI, so httpx never resolves the name again and DNS rebinding has nothing to
rebind. Redirects are followed by hand (downloads only) and each ``Location`` goes through the
same checks. The body is streamed against a byte cap, and one wall-clock deadline covers the
whole exchange.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Generator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from reel.net.addresses import (
    Resolver,
    check_url,
    is_ip_literal,
    is_public_address,
    system_resolver,
)
from reel.net.errors import FetchError

__all__ = [
    "FetchPolicy",
    "PostResult",
    "Resolver",
    "check_url",
    "fetch_bytes",
    "fetch_to_file",
    "is_public_address",
    "post_bytes",
    "system_resolver",
]


@dataclass(frozen=True)
class FetchPolicy:
    """What one fetch may do."""

    #: Trusted hosts (``host:port``, or ``host`` for any port) that skip the address and port
    #: checks; see ``reel.net.addresses.is_allowed_host``.
    allow_hosts: frozenset[str] = frozenset()
    max_bytes: int = 20 * 1024 * 1024
    #: Wall-clock budget for the whole fetch: every hop, connect, headers and body.
    timeout: float = 15.0
    max_redirects: int = 3
    allowed_ports: frozenset[int] = frozenset({80, 443})
    #: Appended to address and port refusals, e.g. which setting allows an internal host.
    refusal_hint: str = ""


# --- fetching --------------------------------------------------------------------------------

_TIMED_OUT: Final = "The download timed out."


class _Deadline:
    """One wall-clock budget for a whole fetch.

    httpx timeouts bound each socket operation, not their sum, so a server that drips a byte
    a second never trips them. httpcore's ``trace`` extension hands us each new connection;
    we keep a duplicate of its socket, and when the budget runs out a timer shuts those
    sockets down, which wakes any blocked read. ``check`` turns what follows into a timeout.
    """

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._fired = False
        self._closed = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        with self._lock:
            self._closed = True
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()
        self._timer.join()

    def remaining(self) -> float:
        return self._at - time.monotonic()

    @property
    def expired(self) -> bool:
        return self._fired or self.remaining() <= 0

    def check(self) -> None:
        if self.expired:
            raise FetchError(_TIMED_OUT)

    def trace(self, event: str, info: Mapping[str, object]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        get_extra_info = getattr(info.get("return_value"), "get_extra_info", None)
        sock = get_extra_info("socket") if callable(get_extra_info) else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self._closed:
                return
            watched = sock.dup()  # shutdown acts on the connection, whoever holds the fd
            self._sockets.append(watched)
            if self._fired:
                _shutdown(watched)

    def _fire(self) -> None:
        with self._lock:
            self._fired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer or by httpcore


def fetch_bytes(
    url: str,
    policy: FetchPolicy,
    *,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> bytes:
    """Download ``url`` under ``policy`` and return the body.

    Raises ``FetchError`` when a hop is refused by ``check_url``, on more than
    ``policy.max_redirects`` redirects, a non-2xx final status, a body over
    ``policy.max_bytes``, a compressed body (we ask for ``identity``), connection errors, or
    when ``policy.timeout`` runs out. ``transport`` replaces the network (tests); it must
    connect to the URL it is handed, which carries the checked IP, not the name.
    """
    with _Deadline(policy.timeout) as deadline:
        with _final_response(url, policy, deadline, resolver, transport) as response:
            if not response.is_success:
                raise FetchError(
                    f"The server answered with status {response.status_code}.",
                    status=response.status_code,
                )
            body = bytearray()
            _read_capped(response, policy.max_bytes, deadline, body.extend)
            return bytes(body)


def fetch_to_file(
    url: str,
    dest: Path,
    policy: FetchPolicy,
    *,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Like :func:`fetch_bytes`, but the body streams into ``dest`` (large files never sit in
    memory); returns its size. On any error ``dest`` is removed."""
    try:
        with (
            _Deadline(policy.timeout) as deadline,
            _final_response(url, policy, deadline, resolver, transport) as response,
        ):
            if not response.is_success:
                raise FetchError(
                    f"The server answered with status {response.status_code}.",
                    status=response.status_code,
                )
            with dest.open("wb") as out:
                return _read_capped(response, policy.max_bytes, deadline, out.write)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class _Outgoing:
    """What to send on each hop."""

    method: str = "GET"
    content: bytes | None = None
    headers: Mapping[str, str] | None = None
    #: Follow redirects (downloads). A POST never does: its 3xx is the answer.
    follow: bool = True


_GET: Final = _Outgoing()


@contextmanager
def _final_response(
    url: str,
    policy: FetchPolicy,
    deadline: _Deadline,
    resolver: Resolver | None,
    transport: httpx.BaseTransport | None,
    outgoing: _Outgoing = _GET,
) -> Generator[httpx.Response, None, None]:
    """Follow redirects by hand, checking every hop; yield the last response, body unread."""
    current = url
    for _ in range(policy.max_redirects + 1):
        target, ip = check_url(current, policy, resolver=resolver)
        with ExitStack() as hop:
            # A fresh pool per hop: connections are keyed by IP, and each hop's TLS
            # session must be verified for that hop's own name.
            sender = (
                transport if transport is not None else hop.enter_context(httpx.HTTPTransport())
            )
            response = _send(sender, target, ip, deadline, outgoing)
            hop.callback(response.close)
            location = response.headers.get("location") if response.is_redirect else None
            if location is None or not outgoing.follow:
                yield response
                return
        try:
            current = str(target.join(location))
        except httpx.InvalidURL as exc:
            raise FetchError("The server redirected to an invalid URL.") from exc
    raise FetchError("The URL redirected too many times.")


def _send(
    transport: httpx.BaseTransport,
    target: httpx.URL,
    ip: str,
    deadline: _Deadline,
    outgoing: _Outgoing = _GET,
) -> httpx.Response:
    deadline.check()
    host = target.raw_host.decode("ascii")
    extensions: dict[str, object] = {
        "timeout": httpx.Timeout(deadline.remaining()).as_dict(),
        "trace": deadline.trace,
    }
    if target.scheme == "https" and not is_ip_literal(host):
        extensions["sni_hostname"] = host.rstrip(".")  # TLS verifies the name, not the IP
    try:
        pinned = target.copy_with(host=ip)
    except httpx.InvalidURL as exc:  # e.g. a scoped IPv6 answer for an allow_hosts name
        raise FetchError("The URL's host could not be resolved.") from exc
    request = httpx.Request(
        outgoing.method,
        pinned,
        headers={
            "Accept": "*/*",
            "Accept-Encoding": "identity",
            "User-Agent": "reel",
            **(outgoing.headers or {}),
            "Host": target.netloc.decode("ascii"),
        },
        content=outgoing.content,
        extensions=extensions,
    )
    try:
        response = transport.handle_request(request)
    except httpx.HTTPError as exc:
        raise _translate(exc, deadline) from exc
    response.request = request
    return response


@dataclass(frozen=True)
class PostResult:
    """The answer to a POST: any status (3xx, 4xx and 5xx included) and the start of its body."""

    status_code: int
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


def post_bytes(
    url: str,
    content: bytes,
    policy: FetchPolicy,
    *,
    headers: Mapping[str, str] | None = None,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> PostResult:
    """POST ``content`` to ``url`` under ``policy`` (same checks and deadline as a download).

    Redirects are not followed: a 3xx comes back as the result. The response body is read up
    to ``policy.max_bytes`` (the rest is dropped, not an error). Raises ``FetchError``
    when the URL is refused, the server cannot be reached, or ``policy.timeout`` runs out.
    """
    outgoing = _Outgoing("POST", content, headers, follow=False)
    with (
        _Deadline(policy.timeout) as deadline,
        _final_response(url, policy, deadline, resolver, transport, outgoing) as response,
    ):
        body = bytearray()
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) >= policy.max_bytes:
                    break
                deadline.check()
        except httpx.HTTPError as exc:
            raise _translate(exc, deadline) from exc
        return PostResult(response.status_code, bytes(body[: policy.max_bytes]))


def _read_capped(
    response: httpx.Response, max_bytes: int, deadline: _Deadline, write: Callable[[bytes], object]
) -> int:
    """Hand the body to ``write`` chunk by chunk, under the byte cap; return its size."""
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError("The file is larger than the allowed maximum.")
    if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        raise FetchError("The server sent a compressed response, which is not accepted.")
    size = 0
    try:
        # Identity encoding only (checked above), so these are the bytes on the wire.
        # iter_bytes, unlike iter_raw, also serves bodies a transport already read.
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise FetchError("The file is larger than the allowed maximum.")
            write(chunk)
            deadline.check()
    except httpx.HTTPError as exc:
        raise _translate(exc, deadline) from exc
    deadline.check()  # a body without a length also "ends" when the deadline cuts the socket
    return size


def _translate(exc: httpx.HTTPError, deadline: _Deadline) -> FetchError:
    if deadline.expired or isinstance(exc, httpx.TimeoutException):
        return FetchError(_TIMED_OUT)
    return FetchError("The server could not be reached or broke off the download.")
