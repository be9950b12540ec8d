"""Idempotency-Key on both create routes, against a real `reel serve` process."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.e2e.server import ReelServer
from tests.imageserver import png_bytes

SEED = "/api/sora-2/generate"
OPENAI = "/v1/videos"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReelServer]:
    data = tmp_path_factory.mktemp("idem") / "data"
    with ReelServer(data, workers=1, REEL_RATE_LIMIT_CREATE="100000/hour") as srv:
        yield srv


def send(
    server: ReelServer, path: str, key: object, body: dict[str, object], idem: str | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=60)


def counts(server: ReelServer, key_id: object) -> tuple[int, int]:
    """(tasks, charges) of a key."""
    with sqlite3.connect(server.data_dir / "reel.db") as db:
        tasks = db.execute("SELECT count(*) FROM tasks WHERE key_id = ?", (key_id,)).fetchone()[0]
        charges = db.execute(
            "SELECT count(*) FROM ledger_entries WHERE key_id = ? AND kind = 'charge'", (key_id,)
        ).fetchone()[0]
    return int(tasks), int(charges)


@pytest.fixture
def slow_image() -> Iterator[str]:
    """An image URL that takes 4 s to answer, so a create stays in flight that long."""
    image = png_bytes(64, 48)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(4)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)

        def log_message(self, format: str, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/slow.png"
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (SEED, {"prompt": "A fox", "mode": "textToVideo"}),
        (OPENAI, {"prompt": "A fox", "model": "sora-2", "seconds": "4"}),
    ],
)
def test_same_key_same_body_replays_without_a_second_charge(
    server: ReelServer, path: str, body: dict[str, object]
) -> None:
    key = server.create_key(credits=100)
    first = send(server, path, key["key"], body, "order-1")
    again = send(server, path, key["key"], body, "order-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert first.headers["idempotent-replayed"] == "false"
    assert again.headers["idempotent-replayed"] == "true"
    assert counts(server, key["id"]) == (1, 1)
    # Another Idempotency-Key, or none, is another request.
    assert send(server, path, key["key"], body, "order-2").json() != first.json()
    send(server, path, key["key"], body, None)
    assert counts(server, key["id"]) == (3, 3)


def test_keys_are_scoped_to_the_api_key_and_route(server: ReelServer) -> None:
    alice, bob = server.create_key(credits=100), server.create_key(credits=100)
    body = {"prompt": "A fox", "mode": "textToVideo"}
    a = send(server, SEED, alice["key"], body, "shared").json()
    b = send(server, SEED, bob["key"], body, "shared").json()
    assert a["taskId"] != b["taskId"]  # never another key's response
    o = send(server, OPENAI, alice["key"], {"prompt": "A fox"}, "shared")
    assert o.status_code == 200 and o.json()["id"] != a["taskId"]
    assert counts(server, alice["id"]) == (2, 2) and counts(server, bob["id"]) == (1, 1)


def test_a_different_body_is_refused_in_each_surface_shape(server: ReelServer) -> None:
    key = server.create_key(credits=100)
    send(server, SEED, key["key"], {"prompt": "A fox", "mode": "textToVideo"}, "k1")
    seed = send(server, SEED, key["key"], {"prompt": "A wolf", "mode": "textToVideo"}, "k1")
    assert seed.status_code == 422
    assert seed.json()["success"] is False
    assert seed.json()["errorCode"] == "IDEMPOTENCY_KEY_REUSED"
    send(server, OPENAI, key["key"], {"prompt": "A fox"}, "k2")
    oai = send(server, OPENAI, key["key"], {"prompt": "A fox", "seconds": "8"}, "k2")
    assert oai.status_code == 422
    assert oai.json()["error"]["code"] == "idempotency_key_reused"
    assert oai.json()["error"]["type"] == "invalid_request_error"
    assert counts(server, key["id"]) == (2, 2)


def test_in_flight_is_409_and_concurrent_duplicates_make_one_task(
    server: ReelServer, slow_image: str
) -> None:
    key = server.create_key(credits=100)
    body = {"prompt": "A fox", "mode": "imageToVideo", "imageUrls": [slow_image]}
    start = threading.Barrier(8)

    def one(_: int) -> httpx.Response:
        start.wait()
        return send(server, SEED, key["key"], body, "burst")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    statuses = sorted(a.status_code for a in answers)
    ok = [a for a in answers if a.status_code == 200]
    assert len(ok) >= 1 and set(statuses) <= {200, 409}, statuses
    assert 409 in statuses  # the image fetch keeps the first one in flight for 4 s
    conflict = next(a for a in answers if a.status_code == 409)
    assert conflict.json()["errorCode"] == "IDEMPOTENCY_REQUEST_IN_PROGRESS"
    assert {a.json()["taskId"] for a in ok} == {ok[0].json()["taskId"]}
    assert counts(server, key["id"]) == (1, 1)
    # Once done, the same request replays the first answer.
    replay = send(server, SEED, key["key"], body, "burst")
    assert replay.json() == ok[0].json() and replay.headers["idempotent-replayed"] == "true"
    assert counts(server, key["id"]) == (1, 1)


def test_concurrent_duplicates_on_v1_make_one_task(server: ReelServer) -> None:
    key = server.create_key(credits=100)
    start = threading.Barrier(8)

    def one(_: int) -> httpx.Response:
        start.wait()
        return send(server, OPENAI, key["key"], {"prompt": "A heron"}, "burst-v1")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert {a.status_code for a in answers} <= {200, 409}
    ids = {a.json()["id"] for a in answers if a.status_code == 200}
    assert len(ids) == 1
    assert counts(server, key["id"]) == (1, 1)


def test_a_refused_request_does_not_use_up_the_key(server: ReelServer) -> None:
    key = server.create_key(credits=1)
    body = {"prompt": "A fox", "mode": "textToVideo"}
    poor = send(server, SEED, key["key"], body, "retry-me")
    assert poor.status_code == 402
    server.cli("credits", "add", str(key["id"]), "10")
    paid = send(server, SEED, key["key"], body, "retry-me")
    assert paid.status_code == 200
    assert counts(server, key["id"]) == (1, 1)


def test_a_malformed_key_is_a_clear_400(server: ReelServer) -> None:
    key = server.create_key(credits=10)
    answer = send(server, SEED, key["key"], {"prompt": "x", "mode": "textToVideo"}, "x" * 300)
    assert answer.status_code == 400
    assert answer.json()["param"] == "Idempotency-Key"
    assert counts(server, key["id"]) == (0, 0)
