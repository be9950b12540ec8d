"""SSRF-safe fetching of user-supplied URLs.

Each hop is checked before anything connects: scheme, user info, port, the spelling of the
host, and every address its name resolves to (resolved once, by us). The request then goes
to the one address that was checked, with the real name in the ``Host`` header and in TLS
SNI, so httpx never resolves the name again and DNS rebinding has nothing to rebind.
Redirects are followed by hand and each ``Location`` goes through the same checks. The body
is streamed against a byte cap, and one wall-clock deadline covers the whole fetch.

Nothing here is image-specific; webhook targets and upstream result URLs can use it too.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Generator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Final

import httpx

from .errors import ImageFetchError

__all__ = [
    "FetchPolicy",
    "Resolver",
    "check_url",
    "fetch_bytes",
    "is_public_address",
    "system_resolver",
]

Resolver = Callable[[str, int], list[str]]
"""``(host, port) -> IP address strings``; the default asks ``socket.getaddrinfo``."""

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class FetchPolicy:
    """What one fetch may do."""

    #: Test-only escape hatch: these host names / IP literals skip the address and port checks.
    allow_hosts: frozenset[str] = frozenset()
    max_bytes: int = 20 * 1024 * 1024
    #: Wall-clock budget for the whole fetch: every hop, connect, headers and body.
    timeout: float = 15.0
    max_redirects: int = 3
    allowed_ports: frozenset[int] = frozenset({80, 443})


# --- addresses -------------------------------------------------------------------------------

_V4_BLOCKED: Final = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
_V6_UNICAST: Final = ipaddress.IPv6Network("2000::/3")  # all globally routed unicast lives here
_V6_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")  # well-known prefix; embeds an IPv4
_V6_BLOCKED: Final = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID, ...
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)


def is_public_address(ip: str) -> bool:
    """Whether ``ip`` is a globally routable unicast address it is safe to connect to.

    Unparseable strings, scoped addresses and every special-purpose range are not public.
    IPv6 forms that embed an IPv4 address are judged by the IPv4 they reach: IPv4-mapped
    and IPv4-compatible are never public; 6to4 and NAT64 only when the embedded one is.
    """
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv4Address):
        return _v4_is_public(addr)
    return _v6_is_public(addr)


def _v4_is_public(addr: ipaddress.IPv4Address) -> bool:
    return (
        addr.is_global
        and not addr.is_multicast
        and not addr.is_reserved
        and not any(addr in net for net in _V4_BLOCKED)
    )


def _v6_is_public(addr: ipaddress.IPv6Address) -> bool:
    if addr.scope_id is not None or addr.ipv4_mapped is not None:
        return False
    if addr in _V6_NAT64:
        return _v4_is_public(ipaddress.IPv4Address(int(addr) & 0xFFFF_FFFF))
    # Outside 2000::/3: ::, ::1, IPv4-compatible, 64:ff9b:1::/48, fc00::/7, fe80::/10, ff00::/8.
    if addr not in _V6_UNICAST or addr.teredo is not None:
        return False
    if any(addr in net for net in _V6_BLOCKED):
        return False
    if addr.sixtofour is not None:
        return _v4_is_public(addr.sixtofour)
    return (
        addr.is_global
        and not addr.is_private
        and not addr.is_multicast
        and not addr.is_reserved
        and not addr.is_site_local
    )


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with ``socket.getaddrinfo``; addresses in answer order, no repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# --- URLs ------------------------------------------------------------------------------------

_DEFAULT_PORTS: Final[Mapping[str, int]] = {"http": 80, "https": 443}
_AUTHORITY: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")
_HOST_NAME: Final = re.compile(r"^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?$")
_NUMERIC_LABEL: Final = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")


def check_url(
    url: str, policy: FetchPolicy, *, resolver: Resolver | None = None
) -> tuple[httpx.URL, str]:
    """Parse and vet ``url``; return it with the one checked IP address to connect to.

    The host is resolved once, with ``resolver``. Raises ``ImageFetchError`` if the URL is
    malformed, not http(s), carries user info, uses a port outside ``policy.allowed_ports``,
    spells a number that is not a dotted-quad IPv4, names localhost, or if *any* of its
    addresses is not public. Hosts in ``policy.allow_hosts`` skip the port and address checks.
    """
    target = _parse(url)
    host = target.raw_host.decode("ascii").lower()
    literal = _literal_address(host)
    port = target.port if target.port is not None else _DEFAULT_PORTS[target.scheme]
    if not 0 < port < 65536:
        raise ImageFetchError("The URL's port is not valid.")

    if _host_key(host) in {_host_key(h) for h in policy.allow_hosts}:
        addresses = [literal] if literal is not None else _resolve(host, port, resolver)
        return target, str(addresses[0])

    if port not in policy.allowed_ports:
        raise ImageFetchError("The URL's port is not allowed.")
    if literal is not None:
        addresses = [literal]
    else:
        if _is_localhost(host):
            raise ImageFetchError("The URL points to a local or private address.")
        addresses = _resolve(host, port, resolver)
    if not all(is_public_address(str(addr)) for addr in addresses):
        raise ImageFetchError("The URL points to a local or private address.")
    return target, str(addresses[0])


def _parse(url: str) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ImageFetchError("The URL is not valid.") from exc
    if target.scheme not in _DEFAULT_PORTS:
        raise ImageFetchError("The URL must use http or https.")
    authority = _AUTHORITY.match(url)
    if target.userinfo or (authority is not None and "@" in authority.group(1)):
        raise ImageFetchError("The URL must not contain a user name or password.")
    if not target.raw_host:
        raise ImageFetchError("The URL has no host.")
    return target


def _literal_address(host: str) -> _IPAddress | None:
    """The IP a literal host spells, None for a name; refuse anything ambiguous.

    Resolvers read ``2130706433``, ``0x7f.1`` or ``0177.0.0.1`` as IPv4 addresses, so any
    host whose last label is a number must be a canonical dotted quad.
    """
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ImageFetchError("The URL's host is not valid.") from exc
    if not _HOST_NAME.match(host):
        raise ImageFetchError("The URL's host is not valid.")
    if not _NUMERIC_LABEL.match(host.rstrip(".").rsplit(".", 1)[-1]):
        return None
    try:
        return ipaddress.IPv4Address(host)
    except ValueError as exc:
        raise ImageFetchError("The URL's host is not a valid IP address.") from exc


def _host_key(host: str) -> str:
    key = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return str(ipaddress.ip_address(key))
    except ValueError:
        return key


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_localhost(host: str) -> bool:
    name = host.rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def _resolve(host: str, port: int, resolver: Resolver | None) -> list[_IPAddress]:
    try:
        answers = (resolver or system_resolver)(host, port)
        addresses = [ipaddress.ip_address(answer) for answer in answers]
    except (OSError, UnicodeError, ValueError) as exc:
        raise ImageFetchError("The URL's host could not be resolved.") from exc
    if not addresses:
        raise ImageFetchError("The URL's host could not be resolved.")
    return addresses


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
            raise ImageFetchError(_TIMED_OUT)

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

    Raises ``ImageFetchError`` when a hop is refused by ``check_url``, on more than
    ``policy.max_redirects`` redirects, a non-2xx final status, a body over
    ``policy.max_bytes``, a compressed body (we ask for ``identity``), connection errors, or
    when ``policy.timeout`` runs out. ``transport`` replaces the network (tests); it must
    connect to the URL it is handed, which carries the checked IP, not the name.
    """
    with _Deadline(policy.timeout) as deadline:
        with _final_response(url, policy, deadline, resolver, transport) as response:
            if not response.is_success:
                raise ImageFetchError(f"The server answered with status {response.status_code}.")
            return _read_capped(response, policy.max_bytes, deadline)


@contextmanager
def _final_response(
    url: str,
    policy: FetchPolicy,
    deadline: _Deadline,
    resolver: Resolver | None,
    transport: httpx.BaseTransport | None,
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
            response = _send(sender, target, ip, deadline)
            hop.callback(response.close)
            location = response.headers.get("location") if response.is_redirect else None
            if location is None:
                yield response
                return
        try:
            current = str(target.join(location))
        except httpx.InvalidURL as exc:
            raise ImageFetchError("The server redirected to an invalid URL.") from exc
    raise ImageFetchError("The URL redirected too many times.")


def _send(
    transport: httpx.BaseTransport, target: httpx.URL, ip: str, deadline: _Deadline
) -> httpx.Response:
    deadline.check()
    host = target.raw_host.decode("ascii")
    extensions: dict[str, object] = {
        "timeout": httpx.Timeout(deadline.remaining()).as_dict(),
        "trace": deadline.trace,
    }
    if target.scheme == "https" and not _is_ip_literal(host):
        extensions["sni_hostname"] = host.rstrip(".")  # TLS verifies the name, not the IP
    try:
        pinned = target.copy_with(host=ip)
    except httpx.InvalidURL as exc:  # e.g. a scoped IPv6 answer for an allow_hosts name
        raise ImageFetchError("The URL's host could not be resolved.") from exc
    request = httpx.Request(
        "GET",
        pinned,
        headers={
            "Host": target.netloc.decode("ascii"),
            "Accept": "*/*",
            "Accept-Encoding": "identity",
            "User-Agent": "reel",
        },
        extensions=extensions,
    )
    try:
        response = transport.handle_request(request)
    except httpx.HTTPError as exc:
        raise _translate(exc, deadline) from exc
    response.request = request
    return response


def _read_capped(response: httpx.Response, max_bytes: int, deadline: _Deadline) -> bytes:
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise ImageFetchError("The file is larger than the allowed maximum.")
    if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        raise ImageFetchError("The server sent a compressed response, which is not accepted.")
    body = bytearray()
    try:
        # Identity encoding only (checked above), so these are the bytes on the wire.
        # iter_bytes, unlike iter_raw, also serves bodies a transport already read.
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise ImageFetchError("The file is larger than the allowed maximum.")
            deadline.check()
    except httpx.HTTPError as exc:
        raise _translate(exc, deadline) from exc
    deadline.check()  # a body without a length also "ends" when the deadline cuts the socket
    return bytes(body)


def _translate(exc: httpx.HTTPError, deadline: _Deadline) -> ImageFetchError:
    if deadline.expired or isinstance(exc, httpx.TimeoutException):
        return ImageFetchError(_TIMED_OUT)
    return ImageFetchError("The server could not be reached or broke off the download.")
