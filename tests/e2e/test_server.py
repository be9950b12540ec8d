"""End to end against a real `reel serve` process on a loopback port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import pytest

from reel.media.video import probe
from tests import services as real
from tests.conftest import BACKENDS
from tests.e2e.server import ReelServer
from tests.imageserver import image_server, png_bytes

#: The contract's documented example requests, word for word (its three curl calls and its
#: JavaScript client): the project's own fixtures, run unchanged against a local server.
SEED_CURL_T2V = """curl -X POST "https://nanophoto.ai/api/sora-2/generate" \\
-H "Content-Type: application/json" \\
-H "Authorization: Bearer YOUR_API_KEY" \\
--data-raw '{
"prompt": "A golden retriever running on a beach at sunset, cinematic lighting",
"mode": "textToVideo",
"modelTier": "sora2",
"aspectRatio": "landscape",
"videoDuration": "10"
}'"""
SEED_CURL_I2V = """curl -X POST "https://nanophoto.ai/api/sora-2/generate" \\
-H "Content-Type: application/json" \\
-H "Authorization: Bearer YOUR_API_KEY" \\
--data-raw '{
"prompt": "The person in the painting comes alive, moving naturally and reciting poetry",
"mode": "imageToVideo",
"modelTier": "sora2",
"aspectRatio": "landscape",
"videoDuration": "10",
"imageUrls": ["https://static.nanophoto.ai/demo/nano-banana-pro.webp"]
}'"""
SEED_CURL_STATUS = """curl -X POST "https://nanophoto.ai/api/sora-2/check-status" \\
-H "Content-Type: application/json" \\
-H "Authorization: Bearer YOUR_API_KEY" \\
--data-raw '{"taskId": "task_abc123"}'"""
SEED_JAVASCRIPT = """async function generateVideo() {
// Step 1: Submit generation task
const response = await fetch("https://nanophoto.ai/api/sora-2/generate", {
method: "POST",
headers: {
"Content-Type": "application/json",
Authorization: "Bearer YOUR_API_KEY",
},
body: JSON.stringify({
prompt: "A golden retriever running on a beach at sunset",
mode: "textToVideo",
modelTier: "sora2",
aspectRatio: "landscape",
videoDuration: "10",
}),
});
const data = await response.json();
if (!data.success) {
console.error("Generation failed:", data.error);
return;
}
// Step 2: Poll for status
const taskId = data.taskId;
while (true) {
await new Promise((resolve) => setTimeout(resolve, 5000)); // Wait 5s
const statusRes = await fetch(
"https://nanophoto.ai/api/sora-2/check-status",
{
method: "POST",
headers: {
"Content-Type": "application/json",
Authorization: "Bearer YOUR_API_KEY",
},
body: JSON.stringify({ taskId }),
}
);
const status = await statusRes.json();
if (status.status === "completed") {
console.log("Video URL:", status.videoUrl);
return;
}
if (status.status === "failed") {
console.error("Generation failed:", status.error);
return;
}
console.log("Still processing...", status.progress);
}
}
generateVideo();"""


def post(server: ReelServer, path: str, key: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        f"{server.url}{path}", json=body, timeout=30, headers={"Authorization": f"Bearer {key}"}
    )


def wait_final(
    server: ReelServer, key: str, task_id: str, timeout: float = 60
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = post(server, "/api/sora-2/check-status", key, {"taskId": task_id}).json()
        assert "status" in body, body
        if body["status"] != "processing":
            return body  # type: ignore[no-any-return]
        time.sleep(0.6)  # stays inside the default 120/minute status budget
    raise AssertionError(f"task {task_id} still processing after {timeout}s")


def ledger(server: ReelServer) -> list[tuple[str, str, int]]:
    return server.query(  # type: ignore[return-value]
        "SELECT task_id, kind, amount FROM ledger_entries WHERE task_id IS NOT NULL ORDER BY id"
    )


def task_rows(server: ReelServer) -> dict[str, tuple[str, int]]:
    rows = server.query("SELECT id, status, attempts FROM tasks")
    return {str(r[0]): (str(r[1]), int(r[2])) for r in rows}  # type: ignore[call-overload]


@pytest.fixture(params=BACKENDS)
def deployment(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Environment of the servers under test: embedded, or PostgreSQL + procrastinate + Redis +
    S3 (each test its own database, Redis prefix and bucket)."""
    if request.param == "embedded":
        yield {}
        return
    real.check_redis()
    scaled = real.scaled_env(
        request.getfixturevalue("postgres"), request.getfixturevalue("s3"), public_url="auto"
    )
    yield scaled.env
    real.delete_redis_prefix(scaled.env["REEL_REDIS_PREFIX"])
    request.getfixturevalue("postgres").release(scaled.database_url)


@pytest.fixture
def server(tmp_path: Path, deployment: dict[str, str]) -> ReelServer:
    with ReelServer(tmp_path / "data", workers=2, **deployment) as srv:
        yield srv  # type: ignore[misc]


def test_text_and_image_to_video_produce_real_mp4(server: ReelServer, tmp_path: Path) -> None:
    key = str(server.create_key(credits=100)["key"])
    t2v = post(
        server,
        "/api/sora-2/generate",
        key,
        {
            "prompt": "A golden retriever running on a beach at sunset, cinematic lighting",
            "mode": "textToVideo",
            "modelTier": "sora2",
            "aspectRatio": "landscape",
            "videoDuration": "10",
        },
    ).json()
    with image_server({"/p.png": (200, "image/png", png_bytes(120, 90))}) as base:
        i2v = post(
            server,
            "/api/sora-2/generate",
            key,
            {
                "prompt": "The person in the painting comes alive",
                "mode": "imageToVideo",
                "modelTier": "sora2",
                "aspectRatio": "landscape",
                "videoDuration": "15",
                "imageUrls": [f"{base}/p.png"],
            },
        ).json()
    for submitted, seconds in ((t2v, 10), (i2v, 15)):
        assert submitted["success"] is True and submitted["status"] == "processing"
        final = wait_final(server, key, str(submitted["taskId"]))
        assert final["status"] == "completed" and final["engine"] == "sandbox", final
        video = httpx.get(str(final["videoUrl"]), timeout=30)
        assert video.status_code == 200
        if str(final["videoUrl"]).startswith(f"{server.url}/media/"):  # Reel's, not a bucket's
            head = httpx.head(str(final["videoUrl"]), timeout=30)
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-length"] == str(len(video.content))
        path = tmp_path / f"{submitted['taskId']}.mp4"
        path.write_bytes(video.content)
        info = probe(path)
        assert info.codec == "h264"
        assert abs(info.duration_s - seconds) < 0.3
        assert info.width > info.height  # landscape
        assert info.frames == round(seconds * info.fps)
    # Signed links stay out of the access log: the path is logged, never its signature.
    if str(final["videoUrl"]).startswith(f"{server.url}/media/"):
        assert "GET /media/" in server.log()
    assert "sig=" not in server.log()


def test_sigkill_midway_then_restart_finishes_everything(
    tmp_path: Path, deployment: dict[str, str]
) -> None:
    env = {**deployment, "REEL_SANDBOX_DELAY": "3"}
    srv = ReelServer(tmp_path / "data", workers=1, **env).start()
    key = str(srv.create_key(credits=100)["key"])
    ids = [
        str(
            post(
                srv, "/api/sora-2/generate", key, {"prompt": f"t{i}", "mode": "textToVideo"}
            ).json()["taskId"]
        )
        for i in range(3)
    ]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(status == "running" for status, _ in task_rows(srv).values()):
            break
        time.sleep(0.1)
    srv.stop(signal.SIGKILL)
    assert any(status == "running" for status, _ in task_rows(srv).values())
    restarted = ReelServer(srv.data_dir, workers=1, **{**env, "REEL_SANDBOX_DELAY": "0.2"})
    with restarted:
        for tid in ids:
            assert wait_final(restarted, key, tid)["status"] == "completed"
    rows = task_rows(srv)
    assert all(status == "completed" for status, _ in rows.values())
    entries = ledger(srv)
    assert sorted(t for t, kind, _ in entries if kind == "charge") == sorted(ids)
    assert not [e for e in entries if e[1] == "refund"]


def test_sigterm_drains_running_task_without_spending_attempt(
    tmp_path: Path, deployment: dict[str, str]
) -> None:
    srv = ReelServer(tmp_path / "data", workers=1, **deployment, REEL_SANDBOX_DELAY="5").start()
    key = str(srv.create_key(credits=10)["key"])
    tid = str(
        post(srv, "/api/sora-2/generate", key, {"prompt": "x", "mode": "textToVideo"}).json()[
            "taskId"
        ]
    )
    deadline = time.monotonic() + 20
    while task_rows(srv)[tid][0] != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert srv.stop(signal.SIGTERM) is not None
    assert task_rows(srv)[tid] == ("queued", 0)
    with ReelServer(srv.data_dir, workers=1, **deployment) as again:
        assert wait_final(again, key, tid)["status"] == "completed"
    assert task_rows(srv)[tid] == ("completed", 1)


def test_time_limit_kills_stuck_worker_and_refunds(tmp_path: Path) -> None:
    env = {"REEL_SANDBOX_DELAY": "30", "REEL_TASK_TIME_LIMIT": "2"}
    with ReelServer(tmp_path / "data", workers=1, **env) as srv:
        key = str(srv.create_key(credits=8)["key"])
        tid = str(
            post(srv, "/api/sora-2/generate", key, {"prompt": "x", "mode": "textToVideo"}).json()[
                "taskId"
            ]
        )
        final = wait_final(srv, key, tid, timeout=30)
        assert final["status"] == "failed" and final["errorCode"] == "GENERATION_FAILED"
        assert "time limit" in str(final["error"])
        account = httpx.get(
            f"{srv.url}/api/sora-2/account", timeout=10, headers={"Authorization": f"Bearer {key}"}
        ).json()
        assert account["credits"] == 8
        assert "respawning" in srv.log() or "started worker process" in srv.log()


def _hammer(args: tuple[str, str, int]) -> list[int]:
    url, key, n = args
    codes = []
    with httpx.Client(timeout=30) as c:
        for i in range(n):
            r = c.post(
                f"{url}/api/sora-2/generate",
                headers={"Authorization": f"Bearer {key}"},
                json={"prompt": f"race {i}", "mode": "textToVideo"},
            )
            codes.append(r.status_code)
    return codes


def test_concurrent_creations_never_overdraw(tmp_path: Path, deployment: dict[str, str]) -> None:
    env = {**deployment, "REEL_MAX_ACTIVE_TASKS_PER_KEY": "1000"}
    with ReelServer(tmp_path / "data", workers=0, **env) as srv:
        key = str(srv.create_key(credits=40)["key"])
        with ProcessPoolExecutor(4) as pool:
            results = list(pool.map(_hammer, [(srv.url, key, 12)] * 4))
    codes = [c for batch in results for c in batch]
    assert codes.count(200) == 10 and codes.count(402) == 38, codes
    entries = ledger(srv)
    assert sum(amount for _, _, amount in entries) == -40
    assert srv.query("SELECT balance FROM accounts") == [(0,)]


def test_cli_keys_and_credits(tmp_path: Path) -> None:
    srv = ReelServer(tmp_path / "data")
    created = srv.create_key(credits=5, name="cli")
    assert created["credits"] == 5 and str(created["key"]).startswith("sk-reel-")
    kid = str(created["id"])
    assert "cli" in srv.cli("keys", "list").stdout
    srv.cli("credits", "add", kid, "7")
    shown = srv.cli("credits", "show", kid).stdout
    assert "balance 12" in shown and "grant" in shown
    srv.cli("keys", "revoke", kid)
    assert srv.cli("credits", "add", "key_missing", "1", check=False).returncode == 1
    with srv:
        r = post(
            srv, "/api/sora-2/generate", str(created["key"]), {"prompt": "x", "mode": "textToVideo"}
        )
        assert r.status_code == 401 and r.json()["errorCode"] == "LOGIN_REQUIRED"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("deployment", ["embedded"], indirect=True)
def test_seed_javascript_example_runs_unchanged(server: ReelServer, tmp_path: Path) -> None:
    script = SEED_JAVASCRIPT.replace("https://nanophoto.ai", server.url)
    key = str(server.create_key(credits=10)["key"])
    script = script.replace("YOUR_API_KEY", key)
    path = tmp_path / "example.mjs"
    path.write_text(script)
    out = subprocess.run(["node", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Video URL:" in out.stdout, out.stdout + out.stderr
    url = out.stdout.split("Video URL:", 1)[1].strip().split()[0]
    assert httpx.get(url, timeout=30).status_code == 200


@pytest.mark.slow
def test_full_size_render_for_every_tier_and_duration(tmp_path: Path) -> None:
    env = {"REEL_SANDBOX_PROFILE": "full", "REEL_SANDBOX_DELAY": "0"}
    expected = {
        ("sora2", "10"): (720, 1280),
        ("sora2", "15"): (720, 1280),
        ("sora2-pro-standard", "10"): (1280, 720),
        ("sora2-pro-standard", "15"): (1280, 720),
        ("sora2-pro-high", "10"): (1080, 1920),
        ("sora2-pro-high", "15"): (1920, 1080),
    }
    with ReelServer(tmp_path / "data", workers=2, **env) as srv:
        key = str(srv.create_key(credits=600)["key"])
        submitted = {}
        for (tier, duration), (w, h) in expected.items():
            aspect = "portrait" if h > w else "landscape"
            r = post(
                srv,
                "/api/sora-2/generate",
                key,
                {
                    "prompt": f"{tier} {duration}s",
                    "mode": "textToVideo",
                    "modelTier": tier,
                    "aspectRatio": aspect,
                    "videoDuration": duration,
                },
            )
            submitted[(tier, duration)] = str(r.json()["taskId"])
        for cell, tid in submitted.items():
            final = wait_final(srv, key, tid, timeout=400)
            assert final["status"] == "completed", final
            path = tmp_path / f"{tid}.mp4"
            path.write_bytes(httpx.get(str(final["videoUrl"]), timeout=60).content)
            info = probe(path)
            assert (info.width, info.height) == expected[cell]
            assert info.fps == 24 and info.frames == 24 * int(cell[1])
            assert abs(info.duration_s - int(cell[1])) < 0.1


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_seed_curl_examples_run_unchanged(server: ReelServer) -> None:
    blocks = [SEED_CURL_T2V, SEED_CURL_I2V, SEED_CURL_STATUS]
    key = str(server.create_key(credits=100)["key"])
    with image_server({"/demo.webp": (200, "image/png", png_bytes(96, 64))}) as base:
        outputs = []
        for block in blocks[:2]:
            cmd = (
                block.replace("https://nanophoto.ai", server.url)
                .replace("YOUR_API_KEY", key)
                .replace(
                    "https://static.nanophoto.ai/demo/nano-banana-pro.webp", f"{base}/demo.webp"
                )
            )
            out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            outputs.append(httpx.Response(200, content=out.stdout).json())
    for submitted in outputs:
        assert submitted["success"] is True and submitted["status"] == "processing"
        status_cmd = (
            blocks[2]
            .replace("https://nanophoto.ai", server.url)
            .replace("YOUR_API_KEY", key)
            .replace("task_abc123", str(submitted["taskId"]))
        )
        out = subprocess.run(["bash", "-c", status_cmd], capture_output=True, text=True, timeout=60)
        status = httpx.Response(200, content=out.stdout).json()
        assert status["taskId"] == submitted["taskId"] and status["success"] is True
        assert wait_final(server, key, str(submitted["taskId"]))["status"] == "completed"


def test_cli_generate_shows_progress_and_downloads(server: ReelServer, tmp_path: Path) -> None:
    key = str(server.create_key(credits=10)["key"])
    out_file = tmp_path / "cli.mp4"
    result = server.cli(
        "generate",
        "A paper boat on a river",
        "--idempotency-key",
        "boat-1",
        "--aspect",
        "landscape",
        "--out",
        str(out_file),
        "--server",
        server.url,
        "--key",
        key,
        "--poll",
        "0.5",
    )
    assert "accepted" in result.stderr and "saved" in result.stderr
    info = probe(out_file)
    assert info.width > info.height and abs(info.duration_s - 10) < 0.3
    task_id = result.stderr.split("task ", 1)[1].split()[0]
    shown = server.cli("status", task_id, "--server", server.url, "--key", key).stdout
    assert "completed" in shown and "video:" in shown
    refused = server.cli(
        "status", task_id, "--server", server.url, "--key", "sk-reel-bad", check=False
    )
    assert refused.returncode == 1 and "LOGIN_REQUIRED" in refused.stderr
    # the same idempotency key again: the first task comes back, nothing new is charged
    again = server.cli(
        "generate",
        "A paper boat on a river",
        "--idempotency-key",
        "boat-1",
        "--aspect",
        "landscape",
        "--out",
        str(tmp_path / "again.mp4"),
        "--server",
        server.url,
        "--key",
        key,
        "--poll",
        "0.5",
    )
    assert again.stderr.split("task ", 1)[1].split()[0] == task_id
    account = httpx.get(
        f"{server.url}/api/sora-2/account", timeout=10, headers={"Authorization": f"Bearer {key}"}
    ).json()
    assert account["credits"] == 6 and account["usage"]["tasks"] == 1


def test_a_key_created_from_another_folder_works_against_the_server(tmp_path: Path) -> None:
    """No REEL_DATA_DIR: the server and the CLI, started in different folders, share the
    per-user data dir, and both say which database they use."""
    xdg = tmp_path / "xdg"
    (tmp_path / "here").mkdir()
    (tmp_path / "elsewhere").mkdir()
    srv = ReelServer(xdg / "reel", workers=0, cwd=tmp_path / "here")
    del srv.env["REEL_DATA_DIR"]
    srv.env["XDG_DATA_HOME"] = str(xdg)
    with srv:
        srv.cwd = tmp_path / "elsewhere"
        made = srv.cli("keys", "create", "--name", "elsewhere", "--credits", "8", "--json")
        database = xdg / "reel" / "reel.db"
        assert made.stderr.splitlines() == [f"using database {database}"]
        key = str(json.loads(made.stdout)["key"])
        r = post(srv, "/api/sora-2/generate", key, {"prompt": "x", "mode": "textToVideo"})
        assert r.status_code == 200 and r.json()["status"] == "processing", r.text
        assert not list((tmp_path / "here").iterdir())
        assert not list((tmp_path / "elsewhere").iterdir())
        log = srv.log()
        assert f"using database {database}" in log
        assert f"data dir    {xdg / 'reel'}" in log
        assert f"playground  {srv.url}/" in log and f"admin       {srv.url}/admin" in log
        assert "every tier is served by the SANDBOX engine" in log


def test_start_up_says_listening_only_once_the_port_is_bound(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "reel", "serve", "--port", str(port), "--no-workers"],
            env={**os.environ, "REEL_DATA_DIR": str(tmp_path / "data")},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1
    assert "listening" not in out.stdout + out.stderr
    assert out.stderr.splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was created


def test_probes_answer_head_and_readyz_logs_nothing(tmp_path: Path) -> None:
    with ReelServer(tmp_path / "data", workers=0) as srv:
        assert httpx.head(f"{srv.url}/healthz", timeout=10).status_code == 200
        assert httpx.head(f"{srv.url}/readyz", timeout=10).status_code == 200
        before = srv.log().count("alembic")
        for _ in range(3):
            assert httpx.get(f"{srv.url}/readyz", timeout=10).json() == {"status": "ok"}
        time.sleep(0.2)
        assert srv.log().count("alembic") == before
