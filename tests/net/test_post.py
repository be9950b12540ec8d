"""post_bytes: the fetch guard, generalized to webhook POSTs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from reel.net.errors import FetchError
from reel.net.fetch import FetchPolicy, post_bytes
from tests.loopback import LoopbackServer
from tests.webhookreceiver import webhook_receiver

LOOPBACK = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout=5.0, max_redirects=0)


def test_sends_body_and_headers_and_returns_any_status() -> None:
    with webhook_receiver(fail_first=1, fail_status=503) as receiver:
        first = post_bytes(
            receiver.url + "/hook", b'{"a":1}', LOOPBACK, headers={"webhook-id": "msg_1"}
        )
        second = post_bytes(receiver.url + "/hook", b'{"a":1}', LOOPBACK)
    assert (first.status_code, first.is_success) == (503, False)
    assert (second.status_code, second.is_success, second.body) == (200, True, b'{"ok": true}')
    request = receiver.received[0]
    assert request.body == b'{"a":1}' and request.headers["webhook-id"] == "msg_1"
    assert request.headers["host"] == receiver.url.removeprefix("http://")


def test_redirects_are_answers_not_hops(server: LoopbackServer) -> None:
    server.redirect("/hook", server.url("/elsewhere"))
    result = post_bytes(server.url("/hook"), b"{}", LOOPBACK)
    assert result.status_code == 302
    assert [s.path for s in server.seen] == ["/hook"]


def test_answer_is_capped(server: LoopbackServer) -> None:
    server.serve("/big", b"x" * 10_000)
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_bytes=100, max_redirects=0)
    assert post_bytes(server.url("/big"), b"{}", policy).body == b"x" * 100


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/hook", "http://localhost/hook", "http://10.0.0.1/", "http://[::1]/"],
)
def test_private_targets_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(FetchError, match="local or private"):
        post_bytes(url, b"{}", FetchPolicy(max_redirects=0))


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(sock.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for c in conns:
        c.close()
    sock.close()


def test_a_silent_receiver_times_out(silent_port: int) -> None:
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout=0.5, max_redirects=0)
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        post_bytes(f"http://127.0.0.1:{silent_port}/", b"{}", policy)
    assert time.monotonic() - started < 3
