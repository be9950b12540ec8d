"""A real `reel serve` driving a fake fal.ai: the upstream fetches Reel's own signed copy of the
start image, and the result comes back through Reel's storage as a playable MP4."""

from __future__ import annotations

import io
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from PIL import Image

from reel.media.video import probe
from reel.storage.signing import verify_callback
from tests.e2e.server import ReelServer
from tests.e2e.test_server import post, wait_final
from tests.fakeupstreams import FakeFal, tiny_mp4
from tests.imageserver import image_server, png_bytes

SIGNING_KEY = "e2e-signing-key-at-least-32-characters"
#: Frames of the fake upstream's result: 10 s at 8 fps, as long as the tasks sold.
FULL_LENGTH = 80


def fal_reel(tmp_path: Path, fal_url: str, params: str, **env: str) -> ReelServer:
    """A `reel serve` whose every tier is served by the fake fal at ``fal_url``."""
    models = tmp_path / "models.toml"
    models.write_text(
        f"""
[models.wan-fal]
engine = "fal"
[models.wan-fal.params]
base_url = "{fal_url}"
credentials_env = "E2E_FAL_KEY"
{params}

[tiers]
sora2 = "wan-fal"
sora2-pro-standard = "wan-fal"
sora2-pro-high = "wan-fal"
"""
    )
    server = ReelServer(
        tmp_path / "data",
        workers=1,
        REEL_MODELS_FILE=str(models),
        REEL_UPSTREAM_FETCH_ALLOW_HOSTS="127.0.0.1",
        E2E_FAL_KEY="e2e-key",
        **env,
    )
    server.env["REEL_PUBLIC_URL"] = server.url
    return server


def test_image_to_video_through_a_hosted_upstream(tmp_path: Path) -> None:
    mp4 = tiny_mp4(tmp_path, frames=FULL_LENGTH)
    png = png_bytes(96, 64)
    with (
        FakeFal(mp4, queue_s=0.3, run_s=0.6) as fal,
        image_server({"/start.png": (200, "image/png", png)}) as images,
    ):
        fal.fetch_inputs = ("image_url",)
        server = fal_reel(
            tmp_path,
            fal.url,
            'endpoint = "fal-ai/wan/v2.2-a14b/image-to-video"\npoll_interval = 0.1',
        )
        with server:
            key = str(server.create_key(credits=50)["key"])
            created = post(
                server,
                "/api/sora-2/generate",
                key,
                {
                    "prompt": "the picture comes alive",
                    "mode": "imageToVideo",
                    "imageUrls": [f"{images}/start.png"],
                    "aspectRatio": "landscape",
                    "videoDuration": "10",
                },
            ).json()
            done = wait_final(server, key, created["taskId"])
            assert done["status"] == "completed", (done, server.log())
            assert done["engine"] == "fal"

            ((url, status, ctype, body),) = fal.fetched
            assert url.startswith(f"{server.url}/media/inputs/") and "sig=" in url
            assert (status, ctype) == (200, "image/png")
            assert Image.open(io.BytesIO(body)).size == (96, 64)  # Reel's validated copy
            assert fal.calls("submit")[0].headers["authorization"] == "Key e2e-key"

            video = httpx.get(str(done["videoUrl"]), timeout=30)
            assert video.status_code == 200 and video.content == mp4
            out = tmp_path / "got.mp4"
            out.write_bytes(video.content)
            assert probe(out).frames == FULL_LENGTH
            assert "e2e-key" not in server.log()


def test_fal_webhook_wakes_the_worker_long_before_its_next_poll(tmp_path: Path) -> None:
    """``webhook = true``: fal calls Reel's signed link when the job ends; the worker, which
    would otherwise ask again only after 60 s, fetches the result at once."""
    mp4 = tiny_mp4(tmp_path, frames=FULL_LENGTH)
    with FakeFal(mp4, queue_s=0.2, run_s=1.0) as fal:
        server = fal_reel(
            tmp_path,
            fal.url,
            'endpoint = "fal-ai/wan/v2.2-a14b/text-to-video"\n'
            "webhook = true\nwebhook_poll_interval = 60",
            REEL_SECRET_KEY=SIGNING_KEY,
        )
        with server:
            key = str(server.create_key(credits=50)["key"])
            started = time.monotonic()
            created = post(
                server,
                "/api/sora-2/generate",
                key,
                {
                    "prompt": "waves",
                    "mode": "textToVideo",
                    "aspectRatio": "landscape",
                    "videoDuration": "10",
                },
            ).json()
            task_id = str(created["taskId"])
            done = wait_final(server, key, task_id, timeout=50)
            took = time.monotonic() - started
            assert done["status"] == "completed", (done, server.log())
            assert took < 20, (took, server.log())  # the fallback poll would come after 60 s

            (submit,) = fal.calls("submit")
            (hook,) = submit.query["fal_webhook"]
            parts = urlsplit(hook)
            assert f"{parts.scheme}://{parts.netloc}" == server.url
            assert parts.path == f"/hooks/fal/{task_id}"
            (sig,) = parse_qs(parts.query)["sig"]
            assert verify_callback(SIGNING_KEY.encode(), task_id, sig)
            assert fal.webhooks == [(hook, 204)]
            # one status call after submitting, one after the callback: no polling between
            assert len(fal.calls("status")) <= 3, fal.calls("status")

            video = httpx.get(str(done["videoUrl"]), timeout=30)
            assert video.status_code == 200 and video.content == mp4  # not the forged payload
