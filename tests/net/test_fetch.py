"""SSRF-safe fetching.

Public-looking names are only ever resolved by fake resolvers and "sent" through
``httpx.MockTransport``; everything that uses a real socket talks to 127.0.0.1, which the
policy admits through ``allow_hosts``.
"""

from __future__ import annotations

import gzip
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reel.net.errors import FetchError
from reel.net.fetch import FetchPolicy, check_url, fetch_bytes, is_public_address
from tests.loopback import LoopbackServer, Seen

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
TIMED_OUT = "The download timed out."

NON_PUBLIC = [
    # IPv4
    "0.0.0.0",
    "0.1.2.3",
    "10.1.2.3",
    "100.64.0.1",  # CGNAT
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.1",  # documentation
    "192.88.99.1",  # 6to4 relay anycast
    "192.168.1.1",
    "198.18.0.1",  # benchmarking
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    # IPv6
    "::",
    "::1",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd00:ec2::254",  # cloud metadata
    "fec0::1",  # site-local
    "ff02::1",
    "ff0e::1",  # global-scope multicast
    "100::1",  # discard
    "5f00::1",
    "2001:2::1",  # benchmarking
    "2001:db8::1",  # documentation
    "3fff::1",  # documentation
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:7f00:1",
    "::ffff:169.254.169.254",
    "::ffff:8.8.8.8",  # mapped is never a legitimate answer, even to a public address
    "::127.0.0.1",  # IPv4-compatible
    "::8.8.8.8",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001::1",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::10.0.0.1",
    "64:ff9b:1::a00:1",  # local-use NAT64
    # not addresses at all
    "",
    "not-an-ip",
    "127.1",
    "2130706433",
    "0x7f000001",
    "1.2.3.4.5",
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    PUBLIC_V4,
    "2606:4700:4700::1111",
    PUBLIC_V6,
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


class FakeResolver:
    """Answers from a table (or a list of answers per call); records every question."""

    def __init__(self, answers: dict[str, list[str] | list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        answer = self.answers[host]
        if answer and isinstance(answer[0], list):  # one answer per call, in order
            return list(answer[len([c for c in self.calls if c[0] == host]) - 1])
        return [str(a) for a in answer]


def everything_is(ip: str) -> FakeResolver:
    class _All(FakeResolver):
        def __call__(self, host: str, port: int) -> list[str]:
            self.calls.append((host, port))
            return [ip]

    return _All({})


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the network was used: {request.url}")


LOUD = httpx.MockTransport(_no_network)


class Recorder:
    """A MockTransport handler that answers from a script and records each request."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.responses:
            raise AssertionError(f"unexpected request to {request.url}")
        return self.responses.pop(0)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


class RecordingTransport(httpx.BaseTransport):
    """Wraps a real transport and records where it was asked to connect."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.urls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        return self.inner.handle_request(request)


# --- is_public_address -----------------------------------------------------------------------


@pytest.mark.parametrize("ip", NON_PUBLIC)
def test_non_public_addresses_are_not_public(ip: str) -> None:
    assert not is_public_address(ip)


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_public(ip: str) -> None:
    assert is_public_address(ip)


@given(st.ip_addresses(v=4))
def test_embedded_ipv4_forms_are_judged_by_the_ipv4_they_reach(v4: ipaddress.IPv4Address) -> None:
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4))
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80) | 1)
    assert is_public_address(str(nat64)) == is_public_address(str(v4))
    assert is_public_address(str(sixtofour)) == is_public_address(str(v4))
    assert not is_public_address(f"::ffff:{v4}")
    assert not is_public_address(str(ipaddress.IPv6Address(int(v4))))  # IPv4-compatible


@given(
    st.sampled_from(["10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12"]).flatmap(
        lambda net: st.ip_addresses(network=net)
    )
    | st.ip_addresses(network="192.168.0.0/16")
    | st.ip_addresses(network="100.64.0.0/10")
    | st.ip_addresses(network="fc00::/7")
    | st.ip_addresses(network="fe80::/10")
)
def test_whole_private_ranges_are_refused(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    assert not is_public_address(str(ip))


# --- check_url: addresses --------------------------------------------------------------------


@pytest.mark.parametrize("ip", NON_PUBLIC)
def test_names_resolving_to_non_public_addresses_are_refused(ip: str) -> None:
    resolver = everything_is(ip)
    with pytest.raises(FetchError):
        check_url("https://images.example/cat.png", FetchPolicy(), resolver=resolver)


@pytest.mark.parametrize("answer", [[PUBLIC_V4, "10.0.0.1"], ["10.0.0.1", PUBLIC_V4]])
def test_one_non_public_answer_among_public_ones_is_enough_to_refuse(answer: list[str]) -> None:
    resolver = FakeResolver({"images.example": answer})
    with pytest.raises(FetchError, match="private"):
        check_url("http://images.example/", FetchPolicy(), resolver=resolver)


def test_a_public_name_passes_and_the_first_answer_is_the_pin() -> None:
    resolver = FakeResolver({"images.example": [PUBLIC_V6, PUBLIC_V4]})
    url, ip = check_url("https://images.example/a.png?x=1", FetchPolicy(), resolver=resolver)
    assert (url.host, url.path, ip) == ("images.example", "/a.png", PUBLIC_V6)
    assert resolver.calls == [("images.example", 443)]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1%25eth0]/",
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b::7f00:1]/",
    ],
)
def test_non_public_ip_literals_are_refused_without_resolving(url: str) -> None:
    resolver = everything_is(PUBLIC_V4)
    with pytest.raises(FetchError):
        check_url(url, FetchPolicy(), resolver=resolver)
    assert resolver.calls == []


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",  # 127.0.0.1 as one number
        "0x7f000001",
        "017700000001",
        "0x7f.0.0.1",
        "0x7f.1",
        "0177.0.0.1",  # octal
        "127.1",
        "127.0.1",
        "127.0.0.1.",
        "1.2.3.4.5",
        "8.8.8.8.",  # even a public one: trailing-dot numbers are not canonical
        "0x",
        "example.123",
    ],
)
def test_numeric_hosts_must_be_canonical_dotted_quads(host: str) -> None:
    # The resolver would say "public"; the refusal must come from reading the host itself.
    resolver = everything_is(PUBLIC_V4)
    with pytest.raises(FetchError):
        check_url(f"http://{host}/", FetchPolicy(), resolver=resolver)
    assert resolver.calls == []


@pytest.mark.parametrize(
    "url",
    ["http://localhost/", "http://LOCALHOST/", "http://localhost./", "http://a.b.localhost/"],
)
def test_localhost_names_are_refused_whatever_dns_says(url: str) -> None:
    resolver = everything_is(PUBLIC_V4)
    with pytest.raises(FetchError, match="private"):
        check_url(url, FetchPolicy(), resolver=resolver)
    assert resolver.calls == []


def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(FetchError, match="private"):
        check_url("http://sneaky.example/", FetchPolicy(), resolver=everything_is("127.0.0.1"))


@pytest.mark.parametrize(
    ("answers", "message"),
    [([], "resolved"), (["not-an-ip"], "resolved"), (["127.1"], "resolved")],
)
def test_useless_resolver_answers_are_refused(answers: list[str], message: str) -> None:
    with pytest.raises(FetchError, match=message):
        check_url("http://x.example/", FetchPolicy(), resolver=FakeResolver({"x.example": answers}))


def test_resolver_failures_become_fetch_errors() -> None:
    def broken(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(FetchError, match="resolved") as info:
        check_url("http://nowhere.example/", FetchPolicy(), resolver=broken)
    assert isinstance(info.value.__cause__, socket.gaierror)


# --- check_url: the rest of the URL ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://images.example/a.png", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://images.example/", "http or https"),
        ("//images.example/a.png", "http or https"),
        ("images.example/a.png", "http or https"),
        ("http:///a.png", "no host"),
        ("http://user@images.example/", "user name"),
        ("http://user:pw@images.example/", "user name"),
        ("http://@images.example/", "user name"),
        ("http://:@images.example/", "user name"),
        ("http://images.example:8080/", "port"),
        ("https://images.example:8443/", "port"),
        ("http://images.example:22/", "port"),
        ("http://images.example:0/", "port"),
        ("http://images.example:65536/", "port"),
        ("http://127%2E0.0.1/", "host"),
        ("http://a\\b.example/", "host"),
        ("http://a..b/", "host"),
        ("http://exa mple.com/", "host"),
        ("http://[::1/", "not valid"),
    ],
)
def test_malformed_or_disallowed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(FetchError, match=message) as info:
        check_url(url, FetchPolicy(), resolver=everything_is(PUBLIC_V4))
    assert isinstance(info.value, FetchError)
    assert info.value.message == str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://images.example/",
        "http://images.example:80/",
        "https://images.example:443/",
        "HTTPS://Images.Example/A.png",
        "http://images.example./",
        "https://bücher.example/",
        "http://under_score.example/",
    ],
)
def test_ordinary_urls_pass(url: str) -> None:
    _, ip = check_url(url, FetchPolicy(), resolver=everything_is(PUBLIC_V4))
    assert ip == PUBLIC_V4


def test_idn_hosts_are_resolved_in_their_ascii_form() -> None:
    resolver = everything_is(PUBLIC_V4)
    check_url("https://bücher.example/", FetchPolicy(), resolver=resolver)
    assert resolver.calls == [("xn--bcher-kva.example", 443)]


def test_allowed_ports_come_from_the_policy() -> None:
    policy = FetchPolicy(allowed_ports=frozenset({8080}))
    check_url("http://images.example:8080/", policy, resolver=everything_is(PUBLIC_V4))
    with pytest.raises(FetchError, match="port"):
        check_url("http://images.example/", policy, resolver=everything_is(PUBLIC_V4))


def test_allow_hosts_skips_address_and_port_checks_for_exactly_those_hosts() -> None:
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1", "Test.Internal", "[::1]"}))
    assert check_url("http://127.0.0.1:5555/x", policy)[1] == "127.0.0.1"
    assert check_url("http://[::1]:5555/x", policy)[1] == "::1"
    resolver = FakeResolver({"test.internal": ["10.9.8.7"]})
    assert check_url("http://test.internal:1/", policy, resolver=resolver)[1] == "10.9.8.7"
    for refused in ["http://127.0.0.2/", "http://localhost/", "http://other.internal/"]:
        with pytest.raises(FetchError):
            check_url(refused, policy, resolver=everything_is("10.9.8.7"))


# --- fetch_bytes through a mock transport ----------------------------------------------------


def test_the_request_goes_to_the_checked_ip_with_the_real_name_in_host_and_sni() -> None:
    recorder = Recorder(httpx.Response(200, content=b"hello"))
    resolver = FakeResolver({"images.example": [PUBLIC_V4]})
    body = fetch_bytes(
        "https://images.example/cat.png?size=1",
        FetchPolicy(),
        resolver=resolver,
        transport=recorder.transport,
    )
    assert body == b"hello"
    [request] = recorder.requests
    assert str(request.url) == f"https://{PUBLIC_V4}/cat.png?size=1"
    assert request.headers["Host"] == "images.example"
    assert request.extensions["sni_hostname"] == "images.example"
    assert request.headers["Accept-Encoding"] == "identity"
    assert resolver.calls == [("images.example", 443)]


def test_ipv6_pins_are_bracketed_and_ports_kept() -> None:
    recorder = Recorder(httpx.Response(200, content=b"v6"))
    policy = FetchPolicy(allowed_ports=frozenset({8443}))
    resolver = FakeResolver({"images.example": [PUBLIC_V6]})
    body = fetch_bytes(
        "https://images.example:8443/a", policy, resolver=resolver, transport=recorder.transport
    )
    assert body == b"v6"
    [request] = recorder.requests
    assert request.url.host == PUBLIC_V6
    assert request.url.port == 8443
    assert request.headers["Host"] == "images.example:8443"


def test_plain_http_and_ip_literals_get_no_sni() -> None:
    recorder = Recorder(httpx.Response(200), httpx.Response(200))
    fetch_bytes(
        "http://images.example/",
        FetchPolicy(),
        resolver=everything_is(PUBLIC_V4),
        transport=recorder.transport,
    )
    fetch_bytes(f"https://{PUBLIC_V4}/", FetchPolicy(), transport=recorder.transport)
    assert all("sni_hostname" not in r.extensions for r in recorder.requests)


def test_dns_rebinding_between_hops_is_refused() -> None:
    # Same name, public the first time it is asked, private the second.
    recorder = Recorder(httpx.Response(302, headers={"Location": "/next"}))
    resolver = FakeResolver({"rebind.example": [[PUBLIC_V4], ["127.0.0.1"]]})
    with pytest.raises(FetchError, match="private"):
        fetch_bytes(
            "http://rebind.example/", FetchPolicy(), resolver=resolver, transport=recorder.transport
        )
    assert [r.url.host for r in recorder.requests] == [PUBLIC_V4]
    assert resolver.calls == [("rebind.example", 80), ("rebind.example", 80)]


def test_each_hop_is_resolved_once_and_relative_locations_keep_the_name() -> None:
    recorder = Recorder(
        httpx.Response(301, headers={"Location": "../b/c.png"}),
        httpx.Response(307, headers={"Location": "https://cdn.example/final.png"}),
        httpx.Response(200, content=b"done"),
    )
    resolver = FakeResolver({"images.example": [PUBLIC_V4], "cdn.example": [PUBLIC_V6]})
    body = fetch_bytes(
        "http://images.example/a/x.png",
        FetchPolicy(),
        resolver=resolver,
        transport=recorder.transport,
    )
    assert body == b"done"
    assert resolver.calls == [("images.example", 80), ("images.example", 80), ("cdn.example", 443)]
    hops = [(r.url.host, r.url.path, r.headers["Host"]) for r in recorder.requests]
    assert hops == [
        (PUBLIC_V4, "/a/x.png", "images.example"),
        (PUBLIC_V4, "/b/c.png", "images.example"),
        (PUBLIC_V6, "/final.png", "cdn.example"),
    ]


@pytest.mark.parametrize(
    "location",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://internal.example/",
        "http://localhost/",
        "http://[::1]/",
        "file:///etc/passwd",
        "http://user@images.example/",
        "http://images.example:2375/",
    ],
)
def test_redirects_to_refused_urls_never_reach_the_transport(location: str) -> None:
    recorder = Recorder(httpx.Response(302, headers={"Location": location}))
    resolver = FakeResolver({"images.example": [PUBLIC_V4], "internal.example": ["10.1.1.1"]})
    with pytest.raises(FetchError):
        fetch_bytes(
            "http://images.example/", FetchPolicy(), resolver=resolver, transport=recorder.transport
        )
    assert len(recorder.requests) == 1


def test_refused_urls_never_reach_the_transport() -> None:
    with pytest.raises(FetchError):
        fetch_bytes("http://10.0.0.1/", FetchPolicy(), transport=LOUD)


def test_compressed_bodies_are_refused() -> None:
    recorder = Recorder(
        httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=gzip.compress(b"x" * 99))
    )
    with pytest.raises(FetchError, match="compressed"):
        fetch_bytes(
            "http://images.example/",
            FetchPolicy(),
            resolver=everything_is(PUBLIC_V4),
            transport=recorder.transport,
        )


class _SlowStream(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        for _ in range(50):
            time.sleep(0.1)
            yield b"x"


def test_the_deadline_also_bounds_transports_without_sockets() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=_SlowStream()))
    policy = FetchPolicy(timeout=1.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match=TIMED_OUT):
        fetch_bytes(
            "http://images.example/", policy, resolver=everything_is(PUBLIC_V4), transport=transport
        )
    assert time.monotonic() - started < 2.0


def test_no_hop_starts_after_the_deadline() -> None:
    calls: list[float] = []

    def slow_redirect(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        time.sleep(0.6)
        return httpx.Response(302, headers={"Location": "/again"})

    policy = FetchPolicy(timeout=1.0, max_redirects=10)
    with pytest.raises(FetchError, match=TIMED_OUT):
        fetch_bytes(
            "http://images.example/",
            policy,
            resolver=everything_is(PUBLIC_V4),
            transport=httpx.MockTransport(slow_redirect),
        )
    assert len(calls) == 2


def test_transport_errors_are_translated() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(FetchError, match="reached") as info:
        fetch_bytes(
            "http://images.example/",
            FetchPolicy(),
            resolver=everything_is(PUBLIC_V4),
            transport=httpx.MockTransport(refuse),
        )
    assert isinstance(info.value.__cause__, httpx.ConnectError)


# --- fetch_bytes over real loopback sockets --------------------------------------------------


def test_fetches_from_an_allowed_loopback_server(
    server: LoopbackServer, loopback_policy: FetchPolicy
) -> None:
    server.serve("/a.bin", b"\x00\x01payload")
    assert fetch_bytes(server.url("/a.bin"), loopback_policy) == b"\x00\x01payload"
    assert server.seen == [Seen("/a.bin", f"127.0.0.1:{server.port}")]


def test_loopback_is_refused_without_allow_hosts(server: LoopbackServer) -> None:
    server.serve("/a.bin", b"payload")
    with pytest.raises(FetchError, match="private"):
        fetch_bytes(server.url("/a.bin"), FetchPolicy(allowed_ports=frozenset({server.port})))
    assert server.seen == []


def test_a_real_connection_goes_to_the_pinned_ip_and_sends_the_original_host(
    server: LoopbackServer,
) -> None:
    # "reel.test" exists only in the fake resolver: reaching the server proves that the
    # connection used the checked IP and that httpx never resolved the name itself.
    server.serve("/pinned", b"ok")
    policy = FetchPolicy(allow_hosts=frozenset({"reel.test"}), timeout=5.0)
    resolver = FakeResolver({"reel.test": ["127.0.0.1"]})
    assert fetch_bytes(f"http://reel.test:{server.port}/pinned", policy, resolver=resolver) == b"ok"
    assert server.seen == [Seen("/pinned", f"reel.test:{server.port}")]
    assert resolver.calls == [("reel.test", server.port)]


@pytest.mark.parametrize(
    "location",
    [
        "http://10.0.0.1/",
        "http://localhost:1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:1/",
        "http://2130706433/",
    ],
)
def test_loopback_redirect_to_a_refused_address_does_not_connect(
    server: LoopbackServer, loopback_policy: FetchPolicy, location: str
) -> None:
    server.redirect("/go", location)
    with httpx.HTTPTransport() as inner:
        recording = RecordingTransport(inner)
        with pytest.raises(FetchError):
            fetch_bytes(server.url("/go"), loopback_policy, transport=recording)
    assert recording.urls == [server.url("/go")]


def _chain(server: LoopbackServer, length: int) -> str:
    for i in range(length, 0, -1):
        server.redirect(f"/hop{i}", f"/hop{i - 1}" if i > 1 else "/end")
    server.serve("/end", b"end")
    return server.url(f"/hop{length}") if length else server.url("/end")


def test_three_redirects_are_followed(server: LoopbackServer, loopback_policy: FetchPolicy) -> None:
    assert fetch_bytes(_chain(server, 3), loopback_policy) == b"end"
    assert [s.path for s in server.seen] == ["/hop3", "/hop2", "/hop1", "/end"]


def test_a_fourth_redirect_is_refused(server: LoopbackServer, loopback_policy: FetchPolicy) -> None:
    with pytest.raises(FetchError, match="redirected too many"):
        fetch_bytes(_chain(server, 4), loopback_policy)
    assert "/end" not in [s.path for s in server.seen]


def test_max_redirects_zero_refuses_any_redirect(server: LoopbackServer) -> None:
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_redirects=0)
    with pytest.raises(FetchError, match="redirected too many"):
        fetch_bytes(_chain(server, 1), policy)


@pytest.mark.parametrize("status", [404, 500, 304, 301])
def test_non_2xx_final_status_is_refused(
    server: LoopbackServer, loopback_policy: FetchPolicy, status: int
) -> None:
    server.serve("/x", b"nope", status=status)
    with pytest.raises(FetchError, match=str(status)):
        fetch_bytes(server.url("/x"), loopback_policy)


def test_a_missing_page_is_refused(server: LoopbackServer, loopback_policy: FetchPolicy) -> None:
    with pytest.raises(FetchError, match="404"):
        fetch_bytes(server.url("/nothing-here"), loopback_policy)


def test_a_closed_port_is_a_fetch_error(loopback_policy: FetchPolicy) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="reached") as info:
        fetch_bytes(f"http://127.0.0.1:{port}/", loopback_policy)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def _headers_then(
    content_length: int | None, body: bytes, then: Callable[[threading.Event], object]
) -> Callable[[BaseHTTPRequestHandler, threading.Event], None]:
    def handler(req: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        req.send_response(200)
        if content_length is not None:
            req.send_header("Content-Length", str(content_length))
        req.end_headers()
        req.wfile.write(body)
        then(stop)

    return handler


def test_a_declared_length_over_the_cap_is_refused_before_reading(
    server: LoopbackServer,
) -> None:
    # The body never comes: only an early refusal can beat the 3 s timeout.
    server.routes["/big"] = _headers_then(10_000_000, b"", lambda stop: stop.wait(5))
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_bytes=1000, timeout=3.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match="larger"):
        fetch_bytes(server.url("/big"), policy)
    assert time.monotonic() - started < 1.5


def test_an_undeclared_body_over_the_cap_is_cut_off_while_streaming(
    server: LoopbackServer,
) -> None:
    server.routes["/big"] = _headers_then(None, b"x" * 4096, lambda stop: stop.wait(5))
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_bytes=1000, timeout=3.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match="larger"):
        fetch_bytes(server.url("/big"), policy)
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("declare", [True, False])
def test_the_cap_is_inclusive(server: LoopbackServer, declare: bool) -> None:
    server.serve("/at", b"y" * 1000, content_length=declare)
    server.serve("/over", b"y" * 1001, content_length=declare)
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_bytes=1000)
    assert fetch_bytes(server.url("/at"), policy) == b"y" * 1000
    with pytest.raises(FetchError, match="larger"):
        fetch_bytes(server.url("/over"), policy)


def _drip_body(req: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    req.send_response(200)
    req.end_headers()
    until = time.monotonic() + 5.0
    while time.monotonic() < until and not stop.wait(0.1):
        req.wfile.write(b"x")  # one byte every 0.1 s: no single read ever times out


def _drip_headers(req: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    req.wfile.write(b"HTTP/1.0 200 OK\r\n")
    until = time.monotonic() + 5.0
    while time.monotonic() < until and not stop.wait(0.1):
        req.wfile.write(b"X-Slow: y\r\n")


def _stall_after_a_late_byte(req: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    req.send_response(200)
    req.end_headers()
    if not stop.wait(0.9):  # just inside the 1 s budget...
        req.wfile.write(b"x")
    stop.wait(5.0)  # ...then silence: a 1 s per-read timeout alone would fire at ~1.9 s


@pytest.mark.parametrize(
    ("handler", "within"),
    [(_drip_body, 2.0), (_drip_headers, 2.0), (_stall_after_a_late_byte, 1.6)],
    ids=["drip-body", "drip-headers", "stall-after-late-byte"],
)
def test_the_timeout_is_one_deadline_for_the_whole_fetch(
    server: LoopbackServer,
    handler: Callable[[BaseHTTPRequestHandler, threading.Event], None],
    within: float,
) -> None:
    server.routes["/slow"] = handler
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match=TIMED_OUT):
        fetch_bytes(server.url("/slow"), policy)
    assert 0.9 < time.monotonic() - started < within


def test_the_deadline_spans_redirect_hops(server: LoopbackServer) -> None:
    def slow_redirect(req: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        stop.wait(0.4)
        req.send_response(302)
        req.send_header("Location", "/slow-redirect")
        req.send_header("Content-Length", "0")
        req.end_headers()

    server.routes["/slow-redirect"] = slow_redirect
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout=1.0, max_redirects=10)
    started = time.monotonic()
    with pytest.raises(FetchError, match=TIMED_OUT):
        fetch_bytes(server.url("/slow-redirect"), policy)
    assert time.monotonic() - started < 2.0
    assert len(server.seen) <= 3
