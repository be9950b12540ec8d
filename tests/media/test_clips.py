"""Uploaded videos checked and re-encoded; two videos joined with their sound cross-faded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reel.media.audio import Audio
from reel.media.clips import CROSSFADE_S, FADE_IN_S, join, normalize
from reel.media.video import VideoDecodeError, encode_frames, probe, read_audio

RATE = 48_000


def clip(path: Path, seconds: float, *, level: int, hz: float | None, fps: int = 4) -> Path:
    frames = [np.full((36, 64, 3), level, dtype=np.uint8) for _ in range(round(seconds * fps))]
    audio = None
    if hz is not None:
        t = np.arange(round(seconds * RATE), dtype=np.float32) / RATE
        audio = Audio(np.repeat((0.5 * np.sin(2 * np.pi * hz * t))[None, :], 2, axis=0), RATE)
    encode_frames(frames, path, fps=fps, audio=audio)
    return path


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def test_join_appends_with_the_sound_cross_faded(tmp_path: Path) -> None:
    first = clip(tmp_path / "a.mp4", 2, level=30, hz=440)
    second = clip(tmp_path / "b.mp4", 3, level=220, hz=None, fps=8)  # silent, other fps
    out = tmp_path / "out.mp4"
    join(first, second, out)
    info = probe(out)
    assert abs(info.duration_s - 5) < 0.01 and info.fps == 4 and info.has_audio
    sound = read_audio(out)
    assert sound is not None
    at = lambda s: sound.samples[:, round(s * sound.rate) : round((s + 0.05) * sound.rate)]  # noqa: E731
    assert rms(at(1.0)) > 0.2  # the source's tone
    assert 0.02 < rms(at(2 - CROSSFADE_S / 2)) < rms(at(1.0))  # fading out over the join
    assert rms(at(3.0)) < 0.02  # the silent segment


def test_the_segments_sound_starts_with_its_first_frame_not_before(tmp_path: Path) -> None:
    first = clip(tmp_path / "a.mp4", 2, level=30, hz=None)  # silent source
    second = clip(tmp_path / "b.mp4", 2, level=220, hz=660)  # sound from its first frame on
    out = tmp_path / "out.mp4"
    join(first, second, out)
    sound = read_audio(out)
    assert sound is not None
    at = lambda s: sound.samples[:, round(s * sound.rate) : round((s + 0.05) * sound.rate)]  # noqa: E731
    assert rms(at(2 - 0.2)) < 0.01 and rms(at(2 - 0.1)) < 0.01  # nothing of it before the join
    assert rms(at(2 + FADE_IN_S)) > 0.2 and rms(at(3.0)) > 0.2  # in step with its pictures


def test_normalize_cuts_to_whole_seconds_at_the_size_asked(tmp_path: Path) -> None:
    data = clip(tmp_path / "u.mp4", 2.5, level=100, hz=220).read_bytes()
    work = tmp_path / "w"
    work.mkdir()
    done = normalize(data, work, fit=lambda w, h: (128, 72), min_seconds=1, max_seconds=10)
    info = probe(done.path)
    assert (done.seconds, info.width, info.height) == (2, 128, 72)
    assert abs(info.duration_s - 2) < 0.01 and info.has_audio


@pytest.mark.parametrize(
    ("data", "low", "high", "message"),
    [
        (b"not a video", 1, 10, "open"),
        (None, 3, 10, "at least 3 s"),
        (None, 1, 1, "at most 1 s"),
    ],
)
def test_normalize_refuses(
    tmp_path: Path, data: bytes | None, low: float, high: float, message: str
) -> None:
    raw = data if data is not None else clip(tmp_path / "u.mp4", 2, level=1, hz=None).read_bytes()
    with pytest.raises(VideoDecodeError, match=message):
        normalize(raw, tmp_path, fit=None, min_seconds=low, max_seconds=high)
