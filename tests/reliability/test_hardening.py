"""Hardening: upstream results stream to disk, PyAV never guesses a container format, and
stored files are served with ``nosniff``."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from reel.engines.upstream.results import DownloadFailed, download
from reel.media.video import VideoDecodeError, probe
from reel.net import FetchPolicy
from reel.service.context import Services
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.conftest import auth
from tests.factories import make_key
from tests.imageserver import image_server

MB = 1024 * 1024
#: An upstream client whose configured servers match no result URL: results are untrusted.
UNTRUSTED: Any = SimpleNamespace(spec=SimpleNamespace(pool=()))


def test_upstream_results_stream_to_disk_not_memory(tmp_path: Path) -> None:
    """A 24 MB result used to be held whole in memory (twice); now memory stays flat."""
    body = bytes(range(256)) * (24 * MB // 256)
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_bytes=64 * MB, timeout=30)
    with image_server({"/video.mp4": (200, "video/mp4", body)}) as base:
        dest = tmp_path / "result.mp4"
        tracemalloc.start()
        try:
            size = download(UNTRUSTED, f"{base}/video.mp4", dest, policy=policy)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert size == len(body) and dest.read_bytes() == body
        assert peak < 4 * MB, f"peak {peak / MB:.1f} MB while downloading 24 MB"
        # Over the cap: refused, and no partial file is left behind.
        small = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_bytes=MB, timeout=30)
        with pytest.raises(DownloadFailed, match="larger"):
            download(UNTRUSTED, f"{base}/video.mp4", tmp_path / "big.mp4", policy=small)
        assert not (tmp_path / "big.mp4").exists()


def test_pyav_reads_only_mp4_and_mov(tmp_path: Path) -> None:
    """A result that is really a GIF (or a playlist, or anything FFmpeg can guess) is refused,
    not demuxed by whatever format its bytes look like."""
    frames = [Image.new("RGB", (16, 16), (i * 80, 0, 0)) for i in range(3)]
    gif = tmp_path / "result.mp4"  # the name lies, as an upstream's could
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    gif.write_bytes(buf.getvalue())
    with pytest.raises(VideoDecodeError):
        probe(gif)
    playlist = tmp_path / "playlist.mp4"
    playlist.write_text("#EXTM3U\n#EXTINF:1.0,\nfile:///etc/hostname\n#EXT-X-ENDLIST\n")
    with pytest.raises(VideoDecodeError):
        probe(playlist)


def test_media_is_served_with_nosniff(client: TestClient, services: Services) -> None:
    issued = make_key(services, credits=100)
    task = client.post(
        "/api/sora-2/generate",
        json={"prompt": "A fox", "mode": "textToVideo"},
        headers=auth(issued.key),
    ).json()["taskId"]
    video = client.post("/v1/videos", json={"prompt": "A boat"}, headers=auth(issued.key))
    run_once(Runner(services))
    run_once(Runner(services))
    status = client.post(
        "/api/sora-2/check-status", json={"taskId": task}, headers=auth(issued.key)
    ).json()
    for url in (status["videoUrl"], status["thumbnailUrl"], status["spritesheetUrl"]):
        r = client.get(url)
        assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff", url
    r = client.get(f"/v1/videos/{video.json()['id']}/content", headers=auth(issued.key))
    assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
