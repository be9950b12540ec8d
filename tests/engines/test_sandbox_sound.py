"""The sandbox's synthesized soundtrack: present, as long as the video, and tied to the picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reel.config import Settings
from reel.engines.base import GenerationRequest
from reel.engines.sandbox import SandboxEngine
from reel.engines.sandbox_sound import SOUND_RATE, soundtrack
from reel.media.video import probe, read_audio
from reel.types import Mode, Stage


def render(tmp_path: Path, prompt: str = "a cat on a beach", **overrides: object) -> Path:
    settings = Settings(data_dir=tmp_path / "data", sandbox_delay=0.0)
    values: dict[str, object] = {
        "task_id": "task_1",
        "prompt": prompt,
        "mode": Mode.TEXT_TO_VIDEO,
        "width": 320,
        "height": 180,
        "duration_s": 4.0,
        "output_path": tmp_path / f"{len(list(tmp_path.iterdir()))}.mp4",
    }
    values.update(overrides)

    def sink(stage: Stage, percent: float) -> None:
        pass

    return (
        SandboxEngine(params={}, settings=settings)
        .generate(
            GenerationRequest(**values),  # type: ignore[arg-type]
            sink,
        )
        .path
    )


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples))))


@pytest.mark.parametrize("profile", ["tiny", "full"])
def test_text_to_video_has_a_stereo_track_as_long_as_the_video(
    tmp_path: Path, profile: str
) -> None:
    settings = Settings(data_dir=tmp_path / "data", sandbox_delay=0.0, sandbox_profile=profile)
    req = GenerationRequest(
        task_id="t",
        prompt="waves",
        mode=Mode.TEXT_TO_VIDEO,
        width=320,
        height=180,
        duration_s=3.0,
        output_path=tmp_path / "v.mp4",
    )
    SandboxEngine(params={}, settings=settings).generate(req, lambda stage, pct: None)

    info = probe(req.output_path)
    audio = read_audio(req.output_path)

    assert info.audio is not None and audio is not None
    assert (info.audio.codec, info.audio.rate, info.audio.channels) == ("aac", 48_000, 2)
    assert info.audio.duration_s == pytest.approx(info.duration_s, abs=1 / info.fps)
    assert rms(audio.samples) > 0.05


def test_image_to_video_has_sound_too(tmp_path: Path) -> None:
    image = tmp_path / "start.png"
    Image.new("RGB", (64, 36), (200, 40, 40)).save(image)

    path = render(tmp_path, mode=Mode.IMAGE_TO_VIDEO, image_path=image)

    audio = read_audio(path)
    assert audio is not None and rms(audio.samples) > 0.05


def test_the_prompt_chooses_the_sound_and_the_same_task_sounds_the_same(tmp_path: Path) -> None:
    one = read_audio(render(tmp_path, "a cat on a beach"))
    again = read_audio(render(tmp_path, "a cat on a beach"))
    other = read_audio(render(tmp_path, "neon city at night in the rain"))

    assert one is not None and again is not None and other is not None
    assert np.array_equal(one.samples, again.samples)
    spectra = [np.abs(np.fft.rfft(a.samples[0, : 2 * a.rate])) for a in (one, other)]
    assert np.argmax(spectra[0]) != np.argmax(spectra[1])


def test_a_blip_sounds_where_the_shape_turns_and_the_lead_pans_with_it() -> None:
    fps, frames = 24, 96
    x = np.concatenate([np.linspace(0.0, 1.0, 60), np.linspace(1.0, 0.6, 36)])  # turns at 60
    motion = np.stack([x, np.full(frames, 0.5)], axis=1)

    samples = soundtrack("a ball", motion, fps)

    assert samples.shape == (2, round(frames / fps * SOUND_RATE))
    loudness = np.abs(samples).max(axis=0)
    window = SOUND_RATE // fps
    per_frame = [loudness[i * window : (i + 1) * window].max() for i in range(frames)]
    # Loud moments (blips) come only at the start and right after the turn, not in between.
    loud = [i for i in range(frames) if per_frame[i] > 1.5 * float(np.median(per_frame))]
    assert 60 in loud and 59 not in loud
    assert set(loud) <= {0, 1, 2, 60, 61, 62}
    # Left early (x near 0), right near the turn (x near 1): the lead follows the shape.
    left, right = samples[:, : SOUND_RATE // 4], samples[:, SOUND_RATE * 2 : SOUND_RATE * 2 + 2400]
    assert rms(left[0]) > rms(left[1])
    assert rms(right[1]) > rms(right[0])


def test_bad_motion_is_refused() -> None:
    with pytest.raises(ValueError, match="frames x 2"):
        soundtrack("x", np.zeros((0, 2)), 24)
