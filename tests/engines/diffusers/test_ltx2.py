"""LTX-2 on tiny random-weight pipelines: video with sound, saved and loaded like a real model.

Through the whole service (API → queue → worker → engine → MP4) for text- and image-to-video at
10 s and 15 s in one pass, and on the engine alone for chaining, upsampling and the checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from reel.config import Settings
from reel.db.models import Task
from reel.engines.base import EngineConfigError, GenerationRequest, Interrupted
from reel.engines.diffusers.ltx2 import LTX2Engine
from reel.media.video import probe, read_audio
from reel.service.context import Services
from reel.types import Mode, Stage
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.conftest import auth
from tests.engines.diffusers.tiny import (
    params_toml,
    require_gpu_extra,
    service_settings,
    tiers_toml,
)
from tests.factories import make_key
from tests.imageserver import image_server, png_bytes

torch = require_gpu_extra()
pytestmark = pytest.mark.gpu

GEN = "/api/sora-2/generate"
STATUS = "/api/sora-2/check-status"
#: Tiny and quick: 64x64 frames (2x2 latents), 4 fps, 2 steps.
FAST: dict[str, object] = {
    "size": [64, 64],
    "fps": 4,
    "steps": 2,
    "max_sequence_length": 16,
    "scale_to_tier": False,
}


def ltx2_settings(tmp_path: Path, model_dir: Path) -> Settings:
    """The whole service with the tiny LTX-2 model at ``model_dir`` serving every tier."""
    models = f"""
[models.ltx2]
engine = "ltx2"
[models.ltx2.params]
model_dir = "{model_dir}"
{params_toml(FAST)}
{tiers_toml("ltx2")}"""
    return service_settings(tmp_path, models, image_fetch_allow_hosts=("127.0.0.1",))


@pytest.fixture
def settings(tmp_path: Path, tiny_ltx2: dict[str, Path]) -> Settings:
    return ltx2_settings(tmp_path, tiny_ltx2["model"])


def assert_video_with_sound(path: Path, *, frames: int) -> None:
    """As many frames as asked, and an audio track as long (±1 frame) that is not silence."""
    info = probe(path)
    audio = read_audio(path)
    assert info.frames == frames
    assert info.audio is not None and audio is not None
    assert info.audio.codec == "aac" and info.audio.rate == 48_000
    assert info.audio.duration_s == pytest.approx(info.duration_s, abs=1 / info.fps)
    assert audio.start_s == pytest.approx(0.0, abs=1 / info.fps)
    assert audio.peak > 0.01 and float(np.std(audio.samples)) > 1e-3


@pytest.mark.parametrize("duration", [10, 15])
@pytest.mark.parametrize("mode", ["textToVideo", "imageToVideo"])
def test_ltx2_video_with_sound_through_the_api(
    client: TestClient,
    services: Services,
    runner: Runner,
    tmp_path: Path,
    mode: str,
    duration: int,
) -> None:
    key = make_key(services, credits=100).key
    body: dict[str, Any] = {
        "prompt": "a cat on the beach at sunset",
        "mode": mode,
        "videoDuration": str(duration),
    }
    with image_server({"/start.png": (200, "image/png", png_bytes(96, 64))}) as base:
        if mode == "imageToVideo":
            body["imageUrls"] = [f"{base}/start.png"]
        r = client.post(GEN, json=body, headers=auth(key))
        assert r.status_code == 200, r.text
        assert run_once(runner)
    task_id = r.json()["taskId"]
    status = client.post(STATUS, json={"taskId": task_id}, headers=auth(key)).json()
    assert status["status"] == "completed" and status["engine"] == "ltx2", status
    video = client.get(status["videoUrl"])
    path = tmp_path / "ltx2.mp4"
    path.write_bytes(video.content)

    assert_video_with_sound(path, frames=duration * 4)
    with services.db.read() as session:
        task = session.get(Task, task_id)
        assert task is not None and task.extra["ltx2"]["passes"] == 1  # one pass: no seam


def make_request(tmp_path: Path, **overrides: object) -> GenerationRequest:
    values: dict[str, Any] = {
        "task_id": "t1",
        "prompt": "a dog running in the city",
        "mode": Mode.TEXT_TO_VIDEO,
        "width": 1280,
        "height": 720,
        "duration_s": 10.0,
        "output_path": tmp_path / "out.mp4",
        "seed": 3,
    }
    values.update(overrides)
    return GenerationRequest(**values)


def engine(tiny_ltx2: dict[str, Path], tmp_path: Path, **params: object) -> LTX2Engine:
    settings = Settings(data_dir=tmp_path / "data")
    return LTX2Engine(
        params={"model_dir": str(tiny_ltx2["model"]), **FAST, **params}, settings=settings
    )


def test_ltx2_chains_passes_and_cross_fades_the_sound(
    tiny_ltx2: dict[str, Path], tmp_path: Path
) -> None:
    ltx2 = engine(tiny_ltx2, tmp_path, segment_frames=17)
    stages: list[tuple[Stage, float]] = []
    try:
        out = ltx2.generate(
            make_request(
                tmp_path, mode=Mode.IMAGE_TO_VIDEO, image_path=_png(tmp_path), duration_s=6.0
            ),
            lambda stage, pct: stages.append((stage, pct)),
        )
    finally:
        ltx2.close()

    # 24 frames from passes of at most 17, the second starting on 9 frames of the first.
    assert out.metadata["ltx2"]["passes"] == 2  # type: ignore[index]
    assert_video_with_sound(out.path, frames=24)
    percents = [pct for _, pct in stages]
    assert percents == sorted(percents) and Stage.DECODING in {s for s, _ in stages}


def test_ltx2_latent_upsampling_doubles_the_size(
    tiny_ltx2: dict[str, Path], tmp_path: Path
) -> None:
    ltx2 = engine(tiny_ltx2, tmp_path, upsampler_dir=str(tiny_ltx2["up"]), distilled=True)
    try:
        out = ltx2.generate(make_request(tmp_path, duration_s=2.0), lambda stage, pct: None)
    finally:
        ltx2.close()

    info = probe(out.path)
    assert (info.width, info.height) == (64, 64)  # rendered at 32x32, upsampled x2
    assert_video_with_sound(out.path, frames=8)


def test_ltx2_cancel_stops_at_the_next_step_and_leaves_nothing(
    tiny_ltx2: dict[str, Path], tmp_path: Path
) -> None:
    ltx2 = engine(tiny_ltx2, tmp_path)

    def sink(stage: Stage, pct: float) -> None:
        if stage is Stage.GENERATING and pct > 0:
            raise Interrupted("canceled")

    try:
        with pytest.raises(Interrupted):
            ltx2.generate(make_request(tmp_path), sink)
    finally:
        ltx2.close()
    assert not (tmp_path / "out.mp4").exists()


def test_ltx2_startup_checks(tiny_ltx2: dict[str, Path], tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    ok = {"model_dir": str(tiny_ltx2["model"])}
    assert LTX2Engine.check(params=ok, settings=settings).image_to_video
    with pytest.raises(EngineConfigError, match="upsampler_dir"):
        LTX2Engine.check(params={**ok, "upsampler_dir": str(tmp_path)}, settings=settings)
    with pytest.raises(EngineConfigError, match="unknown params"):
        LTX2Engine.check(params={**ok, "guidance_2": 3.0}, settings=settings)
    with pytest.raises(EngineConfigError, match="audio_guidance"):
        LTX2Engine.check(params={**ok, "audio_guidance": -1}, settings=settings)
    with pytest.raises(EngineConfigError, match="incomplete"):
        LTX2Engine.check(params={"model_dir": str(tmp_path)}, settings=settings)


def _png(tmp_path: Path) -> Path:
    path = tmp_path / "start.png"
    path.write_bytes(png_bytes(96, 64))
    return path
