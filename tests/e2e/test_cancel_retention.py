"""Cancel (queued and running, both surfaces), delete, and retention over a real server."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
from standardwebhooks import Webhook

from tests.e2e.server import ReelServer
from tests.e2e.test_server import post, wait_final
from tests.webhookreceiver import webhook_receiver


def refunds(server: ReelServer, task_id: str) -> list[tuple[str, int]]:
    with sqlite3.connect(server.data_dir / "reel.db") as db:
        return db.execute(
            "SELECT kind, amount FROM ledger_entries WHERE task_id = ? ORDER BY id", (task_id,)
        ).fetchall()


def task_status(server: ReelServer, task_id: str) -> str:
    with sqlite3.connect(server.data_dir / "reel.db") as db:
        return str(db.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()[0])


def wait_status(server: ReelServer, task_id: str, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if task_status(server, task_id) == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"{task_id} is {task_status(server, task_id)}, not {status}")


def v1(server: ReelServer, method: str, path: str, key: object, **kw: object) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.url}/v1{path}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        **kw,  # type: ignore[arg-type]
    )


def test_cancel_queued_and_running_refunds_exactly_once(tmp_path: Path) -> None:
    env = {
        "REEL_SANDBOX_DELAY": "6",
        "REEL_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        "REEL_WEBHOOK_POLL_SECONDS": "0.1",
    }
    with webhook_receiver() as receiver, ReelServer(tmp_path / "data", workers=1, **env) as srv:
        key = srv.create_key(credits=100)
        secret, api_key = str(key["webhookSecret"]), str(key["key"])
        srv.cli("keys", "webhook", str(key["id"]), receiver.url)
        running = v1(srv, "POST", "/videos", api_key, json={"prompt": "runs"}).json()["id"]
        wait_status(srv, running, "running")
        queued = post(
            srv, "/api/sora-2/generate", api_key, {"prompt": "waits", "mode": "textToVideo"}
        ).json()["taskId"]

        # Seed surface, queued: canceled and refunded at once.
        answer = post(srv, "/api/sora-2/cancel", api_key, {"taskId": queued}).json()
        assert answer["status"] == "failed" and answer["errorCode"] == "TASK_CANCELED"
        assert answer["canceled"] is True and answer["creditsRefunded"] == 4
        assert refunds(srv, queued) == [("charge", -4), ("refund", 4)]

        # /v1 extension, running: stops at the next step, then refunded.
        v = v1(srv, "POST", f"/videos/{running}/cancel", api_key)
        assert v.status_code == 200 and v.json()["status"] == "in_progress"
        wait_status(srv, running, "canceled")
        got = v1(srv, "GET", f"/videos/{running}", api_key).json()
        assert got["status"] == "failed" and got["error"]["code"] == "canceled"
        assert refunds(srv, running) == [("charge", -2), ("refund", 2)]

        # Canceling again changes nothing; a finished task is not cancelable.
        again = post(srv, "/api/sora-2/cancel", api_key, {"taskId": queued})
        assert again.status_code == 200 and refunds(srv, queued) == [("charge", -4), ("refund", 4)]
        events = receiver.wait_for(2)
        assert sorted(Webhook(secret).verify(e.body, e.headers)["type"] for e in events) == [
            "video.canceled",
            "video.canceled",
        ]
        done = v1(srv, "POST", "/videos", api_key, json={"prompt": "finishes"}).json()["id"]
        wait_status(srv, done, "completed", timeout=60)
        late = v1(srv, "POST", f"/videos/{done}/cancel", api_key)
        assert late.status_code == 409 and late.json()["error"]["code"] == "video_not_cancelable"
        assert refunds(srv, done) == [("charge", -2)]


def test_delete_of_a_running_video_cancels_and_refunds(tmp_path: Path) -> None:
    with ReelServer(tmp_path / "data", workers=1, REEL_SANDBOX_DELAY="6") as srv:
        key = srv.create_key(credits=100)
        vid = v1(srv, "POST", "/videos", key["key"], json={"prompt": "x"}).json()["id"]
        wait_status(srv, vid, "running")
        gone = v1(srv, "DELETE", f"/videos/{vid}", key["key"])
        assert gone.json() == {"id": vid, "object": "video.deleted", "deleted": True}
        assert v1(srv, "GET", f"/videos/{vid}", key["key"]).status_code == 404
        wait_status(srv, vid, "canceled")
        assert refunds(srv, vid) == [("charge", -2), ("refund", 2)]
        seed = post(srv, "/api/sora-2/check-status", str(key["key"]), {"taskId": vid})
        assert seed.status_code == 404 and seed.json()["errorCode"] == "TASK_NOT_FOUND"


def test_expired_videos_lose_their_files(tmp_path: Path) -> None:
    env = {"REEL_VIDEO_RETENTION": "8", "REEL_REAPER_SECONDS": "1"}
    with ReelServer(tmp_path / "data", workers=1, **env) as srv:
        key = srv.create_key(credits=100)
        api_key = str(key["key"])
        vid = v1(srv, "POST", "/videos", api_key, json={"prompt": "short-lived"}).json()["id"]
        seed_id = post(
            srv, "/api/sora-2/generate", api_key, {"prompt": "also", "mode": "textToVideo"}
        ).json()["taskId"]
        status = wait_final(srv, api_key, seed_id)
        wait_status(srv, vid, "completed")
        video = v1(srv, "GET", f"/videos/{vid}", api_key).json()
        assert video["expires_at"] - video["completed_at"] in (7, 8, 9)
        assert status["expiresAt"] is not None
        url = str(status["videoUrl"])
        assert httpx.get(url, timeout=30).status_code == 200
        thumb = httpx.get(str(status["thumbnailUrl"]), timeout=30)
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
        sprite = httpx.get(str(status["spritesheetUrl"]), timeout=30)
        assert sprite.status_code == 200 and sprite.headers["content-type"] == "image/jpeg"
        assert v1(srv, "GET", f"/videos/{vid}/content", api_key).status_code == 200
        files = list((srv.data_dir / "media" / "videos").glob("*"))
        assert len(files) == 6

        deadline = time.monotonic() + 30
        while any(f.exists() for f in files) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(f.exists() for f in files)
        assert httpx.get(url, timeout=30).status_code == 404
        assert httpx.get(str(status["thumbnailUrl"]), timeout=30).status_code == 404
        for variant in ("video", "thumbnail", "spritesheet"):
            expired = v1(srv, "GET", f"/videos/{vid}/content?variant={variant}", api_key)
            assert expired.status_code == 410
            assert expired.json()["error"]["code"] == "video_expired"
        # The record stays: still listed, still completed, with its expiry in the past.
        assert v1(srv, "GET", f"/videos/{vid}", api_key).json()["status"] == "completed"
