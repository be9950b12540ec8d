"""Which URLs and addresses the service may connect to on a user's behalf (SSRF rules).

A URL is vetted before anything connects: scheme, user info, port, the spelling of the host,
and every address its name resolves to (resolved once, here). Callers then connect to the one
address that was checked, so DNS rebinding has nothing to rebind. ``reel.net.fetch`` does
that for downloads and for webhook POSTs.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Protocol

import httpx

from reel.net.errors import FetchError

__all__ = [
    "HostRules",
    "Resolver",
    "check_url",
    "is_allowed_host",
    "is_ip_literal",
    "is_public_address",
    "system_resolver",
]


class HostRules(Protocol):
    """The part of a fetch policy that decides where a request may go."""

    #: Trusted hosts that skip the address and port checks: ``host:port`` (that port only)
    #: or a bare ``host`` (any port); names and IP literals compared exactly.
    @property
    def allow_hosts(self) -> frozenset[str]: ...

    @property
    def allowed_ports(self) -> frozenset[int]: ...

    #: Appended to address and port refusals: where an operator can allow a host.
    @property
    def refusal_hint(self) -> str: ...


Resolver = Callable[[str, int], list[str]]
"""``(host, port) -> IP address strings``; the default asks ``socket.getaddrinfo``."""

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    url: str, policy: HostRules, *, resolver: Resolver | None = None
) -> tuple[httpx.URL, str]:
    """Parse and vet ``url``; return it with the one checked IP address to connect to.

    The host is resolved once, with ``resolver``. Raises ``FetchError`` if the URL is
    malformed, not http(s), carries user info, uses a port outside ``policy.allowed_ports``,
    spells a number that is not a dotted-quad IPv4, names localhost, or if *any* of its
    addresses is not public. Hosts in ``policy.allow_hosts`` (at their port, when the entry
    names one) skip the port and address checks. The address is judged before the port, so a
    private address on an odd port is refused for its address.
    """
    target = _parse(url)
    host = target.raw_host.decode("ascii").lower()
    literal = _literal_address(host)
    port = target.port if target.port is not None else _DEFAULT_PORTS[target.scheme]
    if not 0 < port < 65536:
        raise FetchError("The URL's port is not valid.")

    if is_allowed_host(host, port, policy.allow_hosts):
        addresses = [literal] if literal is not None else _resolve(host, port, resolver)
        return target, str(addresses[0])

    if literal is not None:
        addresses = [literal]
    elif _is_localhost(host):
        raise _refused("The URL points to a local or private address.", policy)
    else:
        addresses = _resolve(host, port, resolver)
    if not all(is_public_address(str(addr)) for addr in addresses):
        raise _refused("The URL points to a local or private address.", policy)
    if port not in policy.allowed_ports:
        allowed = " and ".join(str(p) for p in sorted(policy.allowed_ports))
        raise _refused(f"The URL's port is not allowed (only {allowed}).", policy)
    return target, str(addresses[0])


def _refused(message: str, policy: HostRules) -> FetchError:
    hint = policy.refusal_hint
    return FetchError(f"{message} {hint}" if hint else message)


def is_allowed_host(host: str, port: int, entries: Iterable[str]) -> bool:
    """Whether ``host`` at ``port`` is named by an allow-list entry.

    Entries are ``host:port``, ``[v6]:port``, or a bare host / IP literal (any port). Hosts
    compare exactly (case, a trailing dot and IP spelling aside): no wildcards, no networks.
    """
    key = _host_key(host)
    for entry in entries:
        entry_host, entry_port = _split_entry(entry)
        if _host_key(entry_host) == key and entry_port in (None, port):
            return True
    return False


def _split_entry(entry: str) -> tuple[str, int | None]:
    text = entry.strip().lower()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:  # a name, an IPv4 literal or a bare IPv6 literal
        host, port_text = text, ""
    return host, int(port_text) if port_text.isdigit() else None


def _parse(url: str) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError("The URL is not valid.") from exc
    if target.scheme not in _DEFAULT_PORTS:
        raise FetchError("The URL must use http or https.")
    authority = _AUTHORITY.match(url)
    if target.userinfo or (authority is not None and "@" in authority.group(1)):
        raise FetchError("The URL must not contain a user name or password.")
    if not target.raw_host:
        raise FetchError("The URL has no host.")
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
            raise FetchError("The URL's host is not valid.") from exc
    if not _HOST_NAME.match(host):
        raise FetchError("The URL's host is not valid.")
    if not _NUMERIC_LABEL.match(host.rstrip(".").rsplit(".", 1)[-1]):
        return None
    try:
        return ipaddress.IPv4Address(host)
    except ValueError as exc:
        raise FetchError("The URL's host is not a valid IP address.") from exc


def _host_key(host: str) -> str:
    key = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return str(ipaddress.ip_address(key))
    except ValueError:
        return key


def is_ip_literal(host: str) -> bool:
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
        raise FetchError("The URL's host could not be resolved.") from exc
    if not addresses:
        raise FetchError("The URL's host could not be resolved.")
    return addresses
