"""Start images cannot starve or bloat the API: a pixel limit that fits the largest tier,
decoding reduced to the video's size in a small pool of its own, per-key caps on images in
progress, slow image hosts that never hold request threads, and a budget of failed downloads."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import PIL.Image
import pytest
from fastapi.testclient import TestClient

from reel.api.app import create_app
from reel.media.images import Image
from reel.service import ledger, tasks
from reel.service.context import Services
from reel.service.errors import RateLimited, ServiceBusy
from reel.storage.naming import input_image_key
from reel.types import Aspect, Mode, Tier
from tests.conftest import auth, with_settings
from tests.factories import make_key
from tests.imageserver import image_server
from tests.reliability.asgiserver import serve


def balance(services: Services, key_id: str) -> int:
    with services.db.read() as session:
        return ledger.history(session, key_id, limit=1)[0].balance_after


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    PIL.Image.new("RGB", (width, height), (30, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


def upload(client: TestClient, key: str, data: bytes, size: str = "1280x720") -> httpx.Response:
    return client.post(
        "/v1/videos",
        data={"prompt": "x", "size": size},
        files={"input_reference": ("start.png", data, "image/png")},
        headers=auth(key),
    )


def test_pixel_limit_fits_the_largest_tier(client: TestClient, services: Services) -> None:
    """A small file of many pixels (a 17 MP PNG is ~60 KB) is refused before decoding; the old
    limit of 40 MP let one cost half a gigabyte and seconds of CPU."""
    issued = make_key(services, credits=100)
    bomb = png(4200, 4100)
    assert len(bomb) < 200_000
    r = upload(client, issued.key, bomb)
    assert r.status_code == 400 and r.json()["error"]["param"] == "input_reference", r.text
    assert "pixels" in r.json()["error"]["message"]
    assert balance(services, issued.id) == 100


def test_start_images_are_stored_at_the_videos_size(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    issued = make_key(services, credits=100)
    r = upload(client, issued.key, png(4000, 3000))  # 12 MP, allowed
    assert r.status_code == 200, r.text
    services.storage.get_to(input_image_key(r.json()["id"]), tmp_path / "start.png")
    with PIL.Image.open(tmp_path / "start.png") as img:
        # The smallest 4:3 size covering 1280x720: what the video needs, not the upload's.
        assert img.size == (1280, 960)


def test_decodes_run_in_a_small_pool_with_a_per_key_cap(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decodes run on the decode pool's threads, never the request's; a key gets at most
    ``REEL_IMAGE_INFLIGHT_PER_KEY`` at once (429) and a full pool refuses at once (503)."""
    from reel.service import startimages

    svc = with_settings(services, image_decode_concurrency=2, image_inflight_per_key=2)
    release = threading.Event()
    started: list[str] = []

    def slow_decode(data: bytes, *, max_pixels: int, fit: tuple[int, int]) -> Image:
        started.append(threading.current_thread().name)
        release.wait(10)
        return Image(png=png(8, 8), width=8, height=8)

    monkeypatch.setattr(startimages, "decode_image", slow_decode)
    a, b = make_key(svc, credits=100), make_key(svc, credits=100)
    cmd = tasks.NewTask(
        prompt="x",
        mode=Mode.IMAGE_TO_VIDEO,
        tier=Tier.SORA2,
        aspect=Aspect.LANDSCAPE,
        duration_s=10,
        image_data=b"not decoded here",
        image_param="input_reference",
    )
    key_a = next(k for k in _keys(svc) if k.id == a.id)
    key_b = next(k for k in _keys(svc) if k.id == b.id)
    with ThreadPoolExecutor(2) as pool:
        running = [pool.submit(tasks.create, svc, key_a, cmd) for _ in range(2)]
        _wait_for(lambda: len(started) == 2)
        t0 = time.monotonic()
        with pytest.raises(RateLimited):
            tasks.create(svc, key_a, cmd)  # a third from the same key
        with pytest.raises(ServiceBusy):
            tasks.create(svc, key_b, cmd)  # another key, but the pool is full
        assert time.monotonic() - t0 < 1.0  # refused at once, not queued
        release.set()
        done = [f.result(10) for f in running]
    assert all(name.startswith("reel-image-decode") for name in started), started
    assert len(done) == 2 and balance(svc, a.id) == 92 and balance(svc, b.id) == 100


def _keys(services: Services) -> list[object]:
    from sqlalchemy import select

    from reel.db.models import ApiKey

    with services.db.read() as session:
        return list(session.scalars(select(ApiKey)))


def _wait_for(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def black_hole() -> Iterator[tuple[str, list[socket.socket]]]:
    """A host that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/cat.png", accepted
    stop.set()
    thread.join(2)
    for sock in accepted:
        sock.close()
    listener.close()


def test_a_slow_image_host_does_not_starve_other_keys(
    services: Services, black_hole: tuple[str, list[socket.socket]]
) -> None:
    """40 creates pointing at a host that never answers used to hold every request thread for
    the whole fetch timeout; another key's check-status waited as long."""
    url, accepted = black_hole
    svc = with_settings(services, image_fetch_timeout=3.0)
    slow, other = make_key(svc, credits=1000), make_key(svc, credits=10)
    body = {"prompt": "x", "mode": "imageToVideo", "imageUrls": [url]}
    with serve(create_app(svc.settings, services=svc)) as port:
        base = f"http://127.0.0.1:{port}"

        def create(_: int) -> int:
            with httpx.Client(base_url=base, timeout=30) as http:
                r = http.post("/api/sora-2/generate", json=body, headers=auth(slow.key))
                return r.status_code

        with ThreadPoolExecutor(40) as pool:
            creates = [pool.submit(create, i) for i in range(40)]
            _wait_for(lambda: len(accepted) >= 1)
            time.sleep(0.5)  # every create has arrived by now
            with httpx.Client(base_url=base, timeout=30) as http:
                t0 = time.monotonic()
                r = http.post(
                    "/api/sora-2/check-status", json={"taskId": "task_x"}, headers=auth(other.key)
                )
                waited = time.monotonic() - t0
            statuses = sorted(f.result() for f in creates)
    assert r.status_code == 404 and waited < 1.0, waited
    assert len(accepted) <= svc.settings.image_inflight_per_key
    assert statuses.count(429) >= 40 - svc.settings.image_inflight_per_key, statuses
    assert balance(svc, slow.id) == 1000


def test_failed_downloads_spend_a_per_key_budget(services: Services) -> None:
    svc = with_settings(services, image_fetch_failures="3/minute")
    app = create_app(svc.settings, services=svc)
    issued, other = make_key(svc, credits=100), make_key(svc, credits=100)
    with image_server({"/ok.png": (200, "image/png", png(64, 48))}) as base, TestClient(app) as c:
        missing = {"prompt": "x", "mode": "imageToVideo", "imageUrls": [f"{base}/missing.png"]}
        for _ in range(3):
            r = c.post("/api/sora-2/generate", json=missing, headers=auth(issued.key))
            assert r.status_code == 400 and r.json()["errorCode"] == "IMAGE_FETCH_FAILED"
        r = c.post("/api/sora-2/generate", json=missing, headers=auth(issued.key))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1, r.text
        assert r.json()["errorCode"] == "API_KEY_RATE_LIMIT_EXCEEDED"
        # Another key is not affected.
        ok = {"prompt": "x", "mode": "imageToVideo", "imageUrls": [f"{base}/ok.png"]}
        assert c.post("/api/sora-2/generate", json=ok, headers=auth(other.key)).status_code == 200
    assert balance(svc, issued.id) == 100
