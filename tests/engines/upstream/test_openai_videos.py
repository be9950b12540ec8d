"""The OpenAI-compatible /v1/videos engine (vLLM-Omni, SGLang-Diffusion, another Reel)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reel.config import Settings
from reel.engines.base import EngineError, Interrupted
from reel.types import Mode, Stage
from tests.engines.upstream.conftest import FAST, Sink, make_engine, request, upstream_meta
from tests.fakeupstreams import FakeVideos, parse_multipart, wait_for
from tests.imageserver import png_bytes

VLLM_INPUT = {
    "prompt": "{prompt}",
    "width": "{width}",
    "height": "{height}",
    "num_frames": {"from": "duration", "map": {"10": 81, "15": 121}},
    "fps": 16,
    "num_inference_steps": 4,
    "guidance_scale": 1.0,
    "seed": "{seed}",
}


def params(*servers: FakeVideos, **extra: object) -> dict[str, object]:
    return {"pool": [s.url for s in servers], "input": VLLM_INPUT, **FAST, **extra}


def test_multipart_create_poll_content(
    videos: FakeVideos, upstream_settings: Settings, tmp_path: Path
) -> None:
    engine = make_engine("openai_videos", params(videos), upstream_settings)
    sink = Sink()
    png = png_bytes()
    out = engine.generate(request(tmp_path, mode=Mode.IMAGE_TO_VIDEO, image_png=png), sink)
    assert out.frames == 8
    create = videos.calls("submit")[0]
    assert "authorization" not in create.headers  # no credentials configured
    fields, files = parse_multipart(create.headers["content-type"], create.body)
    assert fields == {
        "prompt": "a red fox in the snow",
        "width": "1280",
        "height": "720",
        "num_frames": "81",
        "fps": "16",
        "num_inference_steps": "4",
        "guidance_scale": "1.0",
        "seed": "1234",
    }
    assert files == {"input_reference": png}
    assert len(videos.calls("content")) == 1
    percents = [p for s, p in sink.calls if s is Stage.GENERATING]
    assert percents == sorted(percents)
    assert upstream_meta(out)["server"] == videos.url


def test_pool_spreads_jobs_by_server_load(
    videos: FakeVideos, videos2: FakeVideos, upstream_settings: Settings, tmp_path: Path
) -> None:
    videos.run_s = 30  # busy with someone else's job
    videos.new_job({"prompt": "other"}, prompt="other")
    engine = make_engine("openai_videos", params(videos, videos2), upstream_settings)
    engine.generate(request(tmp_path), Sink())
    assert not videos.calls("submit") and len(videos2.calls("submit")) == 1
    assert videos.calls("list") and videos2.calls("list")


def test_busy_pool_waits_for_a_free_server(
    videos: FakeVideos, upstream_settings: Settings, tmp_path: Path
) -> None:
    other = videos.new_job({"prompt": "other"}, prompt="other")
    other.run_s = 0.8
    engine = make_engine("openai_videos", params(videos), upstream_settings)
    sink = Sink()
    engine.generate(request(tmp_path), sink)
    mine = videos.calls("submit")[0]
    assert mine.at >= other.created + other.queue_s + other.run_s - 0.05
    assert sink.calls[0][0] is Stage.QUEUED


def test_failed_video_and_cancel(
    videos: FakeVideos, upstream_settings: Settings, tmp_path: Path
) -> None:
    videos.fail_jobs = True
    engine = make_engine("openai_videos", params(videos), upstream_settings)
    with pytest.raises(EngineError):
        engine.generate(request(tmp_path), Sink())

    videos.fail_jobs, videos.run_s = False, 30
    sink = Sink()

    def cancel_soon() -> None:
        wait_for(lambda: Stage.GENERATING in sink.stages())
        sink.stop = "canceled"

    threading.Thread(target=cancel_soon, daemon=True).start()
    with pytest.raises(Interrupted):
        engine.generate(request(tmp_path, prompt="second"), sink)
    assert len(videos.calls("cancel")) == 1
    assert next(j for j in videos.jobs.values() if j.prompt == "second").canceled


def test_expired_content_fails_cleanly(
    videos: FakeVideos, upstream_settings: Settings, tmp_path: Path
) -> None:
    videos.expired_links = 2
    engine = make_engine("openai_videos", params(videos), upstream_settings)
    with pytest.raises(EngineError) as info:
        engine.generate(request(tmp_path), Sink())
    assert "could not be downloaded" in info.value.message
    assert len(videos.calls("content")) == 2


def test_not_a_video(videos: FakeVideos, upstream_settings: Settings, tmp_path: Path) -> None:
    videos.video = b"<html>not a video</html>"
    engine = make_engine("openai_videos", params(videos), upstream_settings)
    with pytest.raises(EngineError) as info:
        engine.generate(request(tmp_path), Sink())
    assert "not a playable video" in info.value.message
