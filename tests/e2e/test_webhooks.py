"""Signed webhooks end to end: a real `reel serve`, real receivers on loopback, the CLI."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.exceptions import WebhookVerificationError

from tests.e2e.server import ReelServer
from tests.e2e.test_server import post, wait_final
from tests.webhookreceiver import Received, webhook_receiver

FAST = {
    "REEL_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    "REEL_WEBHOOK_POLL_SECONDS": "0.1",
    "REEL_WEBHOOK_BACKOFF_BASE": "0.3",
    "REEL_RATE_LIMIT_STATUS": "100000/minute",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReelServer]:
    data = tmp_path_factory.mktemp("webhooks") / "data"
    with ReelServer(data, workers=1, **FAST) as srv:
        yield srv


def generate(server: ReelServer, key: str, **extra: object) -> str:
    body = {"prompt": "A heron in the reeds", "mode": "textToVideo", **extra}
    answer = post(server, "/api/sora-2/generate", key, body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["taskId"])


def deliveries(server: ReelServer, *args: str) -> list[dict[str, object]]:
    out = server.cli("webhooks", "list", "--json", *args)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def wait_delivery(
    server: ReelServer, task_id: str, status: str, timeout: float = 30
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(server.data_dir / "reel.db") as db:
            db.row_factory = sqlite3.Row
            row = db.execute(
                "SELECT * FROM webhook_deliveries WHERE task_id = ?", (task_id,)
            ).fetchone()
        if row is not None and row["status"] == status:
            return dict(row)
        time.sleep(0.1)
    raise AssertionError(f"delivery for {task_id} never reached {status}: {row and dict(row)}")


def verify(secret: str, request: Received) -> dict[str, object]:
    return Webhook(secret).verify(request.body, request.headers)  # type: ignore[no-any-return]


def test_key_webhook_is_signed_and_carries_the_result(server: ReelServer) -> None:
    key = server.create_key(credits=50, name="hooked")
    secret = str(key["webhookSecret"])
    assert secret.startswith("whsec_")
    with webhook_receiver() as receiver:
        out = server.cli("keys", "webhook", str(key["id"]), f"{receiver.url}/hooks/reel")
        assert "webhook set" in out.stdout
        task_id = generate(server, str(key["key"]))
        [request] = receiver.wait_for(1)
    event = verify(secret, request)
    assert request.path == "/hooks/reel"
    assert event["type"] == "video.completed" and event["object"] == "event"
    assert event["id"] == request.headers["webhook-id"]
    data = event["data"]
    assert isinstance(data, dict)
    assert data["taskId"] == task_id and data["status"] == "completed" and data["creditsUsed"] == 4
    video = httpx.get(str(data["videoUrl"]), timeout=30)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    thumb = httpx.get(str(data["thumbnailUrl"]), timeout=30)
    assert thumb.headers["content-type"] == "image/webp"
    # The signature really covers the body: one changed byte and verification fails.
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body.replace(b"completed", b"c0mpleted"), request.headers)
    with pytest.raises(WebhookVerificationError):
        other = server.create_key(credits=0, name="other")
        Webhook(str(other["webhookSecret"])).verify(request.body, request.headers)


def test_callback_url_overrides_the_key_webhook(server: ReelServer) -> None:
    key = server.create_key(credits=50, name="callback")
    with webhook_receiver() as keyhook, webhook_receiver() as callback:
        server.cli("keys", "webhook", str(key["id"]), keyhook.url)
        task_id = generate(server, str(key["key"]), callBackUrl=f"{callback.url}/cb")
        [request] = callback.wait_for(1)
        wait_final(server, str(key["key"]), task_id)
        time.sleep(0.5)
        assert keyhook.received == []
    event = verify(str(key["webhookSecret"]), request)
    assert event["type"] == "video.completed" and request.path == "/cb"


def test_failing_receiver_is_retried_with_backoff_and_recorded(server: ReelServer) -> None:
    key = server.create_key(credits=50, name="flaky")
    with webhook_receiver(fail_first=3) as receiver:
        task_id = generate(server, str(key["key"]), callBackUrl=receiver.url)
        requests = receiver.wait_for(4)
        row = wait_delivery(server, task_id, "succeeded")
    assert [r.status for r in requests] == [500, 500, 500, 200]
    assert len({r.headers["webhook-id"] for r in requests}) == 1  # one event, four attempts
    for r in requests:
        verify(str(key["webhookSecret"]), r)
    gaps = [
        int(b.headers["webhook-timestamp"]) - int(a.headers["webhook-timestamp"])
        for a, b in itertools.pairwise(requests)
    ]
    assert sum(gaps) >= 1  # 0.3 + 0.6 + 1.2 s of backoff, in whole-second timestamps
    assert row["attempts"] == 4 and row["last_status_code"] == 200
    [listed] = deliveries(server, "--key", str(key["id"]))
    assert listed["status"] == "succeeded" and listed["attempts"] == 4
    assert listed["event"] == "video.completed" and listed["taskId"] == task_id


def test_private_and_unlisted_targets_are_refused(server: ReelServer) -> None:
    key = server.create_key(credits=50, name="ssrf")
    with webhook_receiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        for url in (f"http://localhost:{port}/", f"http://10.0.0.7:{port}/", "http://10.0.0.7/"):
            answer = post(
                server,
                "/api/sora-2/generate",
                str(key["key"]),
                {"prompt": "x", "mode": "textToVideo", "callBackUrl": url},
            )
            assert answer.status_code == 400, url
            assert answer.json()["errorCode"] == "INVALID_PARAMETER"
            assert answer.json()["param"] == "callBackUrl"
        refused = server.cli("keys", "webhook", str(key["id"]), "http://127.0.0.2/", check=False)
        assert refused.returncode == 1 and "private" in refused.stderr
        # A target that turned private after it was set (e.g. its DNS changed) is refused at
        # delivery time, recorded, and not retried.
        with sqlite3.connect(server.data_dir / "reel.db") as db:
            db.execute(
                "UPDATE api_keys SET webhook_url = ? WHERE id = ?",
                (f"http://localhost:{port}/", key["id"]),
            )
        task_id = generate(server, str(key["key"]))
        row = wait_delivery(server, task_id, "failed")
        time.sleep(0.3)
        assert receiver.received == []
    assert row["attempts"] == 1 and "refused" in str(row["last_error"])
    with sqlite3.connect(server.data_dir / "reel.db") as db:
        assert (
            db.execute("SELECT count(*) FROM tasks WHERE key_id = ?", (key["id"],)).fetchone()[0]
            == 1
        )  # the refused callBackUrl requests created nothing


def test_secret_rotation(server: ReelServer) -> None:
    key = server.create_key(credits=50, name="rotor")
    shown = server.cli("keys", "webhook-secret", str(key["id"]), check=False)
    assert shown.returncode == 2 and "--rotate" in shown.stderr
    rotated = server.cli("keys", "webhook-secret", str(key["id"]), "--rotate")
    new_secret = rotated.stdout.strip().splitlines()[-1]
    assert new_secret.startswith("whsec_") and new_secret != key["webhookSecret"]
    with webhook_receiver() as receiver:
        generate(server, str(key["key"]), callBackUrl=receiver.url)
        [request] = receiver.wait_for(1)
    verify(new_secret, request)
    with pytest.raises(WebhookVerificationError):
        verify(str(key["webhookSecret"]), request)


def test_failed_event_survives_a_restart_and_replays(tmp_path: Path) -> None:
    env = {**FAST, "REEL_SANDBOX_FAIL_RATE": "1", "REEL_WEBHOOK_MAX_ATTEMPTS": "30"}
    data = tmp_path / "data"
    with webhook_receiver(fail_first=10_000, fail_status=503) as receiver:
        srv = ReelServer(data, workers=1, **env).start()
        key = srv.create_key(credits=50, name="restart")
        task_id = generate(srv, str(key["key"]), callBackUrl=receiver.url)
        receiver.wait_for(2)
        srv.stop()
        seen = len(receiver.received)
        receiver.fail_first = 0  # the receiver recovers while Reel is down
        with ReelServer(data, workers=1, **env) as again:
            row = wait_delivery(again, task_id, "succeeded")
            final = receiver.received[-1]
            assert final.status == 200 and len(receiver.received) > seen
            event = verify(str(key["webhookSecret"]), final)
            assert event["type"] == "video.failed"
            assert row["attempts"] == len(receiver.received)

            # The operator can send it again: same webhook-id, fresh attempts.
            before = len(receiver.received)
            replayed = again.cli("webhooks", "replay", str(row["id"]))
            assert "queued 1" in replayed.stdout
            receiver.wait_for(before + 1)
            assert receiver.received[-1].headers["webhook-id"] == row["id"]
            wait_delivery(again, task_id, "succeeded")
            unknown = again.cli("webhooks", "replay", "msg_nope", check=False)
            assert unknown.returncode == 1
