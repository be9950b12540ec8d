"""The MP4 writer's audio track, checked on decoded output: length, start, sync, interleaving."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from reel.media.audio import AUDIO_RATE
from reel.media.previews import spritesheet, thumbnail
from reel.media.video import (
    Audio,
    VideoEncodeError,
    VideoWriter,
    encode_frames,
    frame_count,
    probe,
    read_audio,
)

FPS = 24


def flash_frames(n: int, flash: int) -> list[np.ndarray]:
    """Black frames with one white frame at ``flash``."""
    return [np.full((48, 64, 3), 255 if i == flash else 0, dtype=np.uint8) for i in range(n)]


def click_track(seconds: float, at_s: float, *, rate: int, channels: int = 2) -> np.ndarray:
    """Silence with a 5 ms click starting at ``at_s``."""
    samples = np.zeros((channels, round(seconds * rate)), dtype=np.float32)
    start = round(at_s * rate)
    samples[:, start : start + rate // 200] = 0.8
    return samples


def onset(audio: Audio, threshold: float = 0.3) -> float:
    """Seconds into the file where the audio first exceeds ``threshold``."""
    loud = np.flatnonzero(np.abs(audio.samples).max(axis=0) > threshold)
    assert loud.size, "no click in the decoded audio"
    return audio.start_s + loud[0] / audio.rate


def flash_time(path: Path) -> float:
    """Presentation time of the brightest decoded frame."""
    with av.open(str(path)) as container:
        best = max(
            container.decode(video=0),
            key=lambda f: float(f.to_ndarray(format="gray").mean()),
        )
        assert best.pts is not None and best.time_base is not None
        return float(best.pts * best.time_base)


def packet_order(path: Path) -> str:
    with av.open(str(path)) as container:
        return "".join(p.stream.type[0] for p in container.demux() if p.size)


@pytest.mark.parametrize(("rate", "channels"), [(16_000, 2), (24_000, 1), (44_100, 2)])
def test_track_is_48k_aac_as_long_as_the_video_and_starts_with_it(
    tmp_path: Path, rate: int, channels: int
) -> None:
    path = tmp_path / "clip.mp4"
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (channels, rate * 3)).astype(np.float32)

    encode_frames(flash_frames(50, 10), path, fps=FPS, audio=Audio(noise, rate))

    info = probe(path)
    assert info.audio is not None
    assert (info.audio.codec, info.audio.rate, info.audio.channels) == ("aac", 48_000, channels)
    assert info.audio.start_s == pytest.approx(0.0, abs=1e-3)
    # 50 frames at 24 fps: the track is cut to 2.083 s although 3 s were given.
    assert info.audio.duration_s == pytest.approx(info.duration_s, abs=1 / FPS)
    decoded = read_audio(path)
    assert decoded is not None and decoded.rate == AUDIO_RATE
    assert decoded.peak > 0.2


def test_short_audio_is_padded_to_the_video_length(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    encode_frames(flash_frames(72, 0), path, fps=FPS, audio=Audio(np.full((2, 8000), 0.5), 16_000))

    info = probe(path)
    decoded = read_audio(path)

    assert info.audio is not None and decoded is not None
    assert info.audio.duration_s == pytest.approx(3.0, abs=1 / FPS)
    # Sound for the first half second, then silence to the end of the video.
    assert np.abs(decoded.samples[:, : AUDIO_RATE // 4]).mean() > 0.3
    assert np.abs(decoded.samples[:, 2 * AUDIO_RATE :]).max() < 0.02


@pytest.mark.parametrize("flash", [5, 31, 60])
def test_a_click_under_a_frame_is_heard_within_one_frame_of_it(tmp_path: Path, flash: int) -> None:
    path = tmp_path / "clip.mp4"
    audio = Audio(click_track(3.0, flash / FPS, rate=24_000), 24_000)

    encode_frames(flash_frames(72, flash), path, fps=FPS, audio=audio)

    decoded = read_audio(path)
    assert decoded is not None
    assert flash_time(path) == pytest.approx(flash / FPS, abs=1e-3)
    assert onset(decoded) == pytest.approx(flash_time(path), abs=1 / FPS)


def test_audio_written_in_pieces_or_after_the_frames_is_interleaved(tmp_path: Path) -> None:
    rate = 16_000
    click = click_track(4.0, 70 / FPS, rate=rate)
    early, late = tmp_path / "early.mp4", tmp_path / "late.mp4"
    with VideoWriter(early, width=64, height=48, fps=FPS, audio_rate=rate) as writer:
        for second, frames in enumerate(np.split(np.array(flash_frames(96, 70)), 4)):
            writer.write_audio(click[:, second * rate : (second + 1) * rate])
            for frame in frames:
                writer.write(frame)
    with VideoWriter(late, width=64, height=48, fps=FPS, audio_rate=rate) as writer:
        for frame in flash_frames(96, 70):
            writer.write(frame)
        writer.write_audio(click)

    for path in (early, late):
        order = packet_order(path)
        # Both streams alternate through the file: never 4 s of one and then the other.
        assert "v" * 30 not in order and "a" * 30 not in order
        decoded = read_audio(path)
        assert decoded is not None
        assert onset(decoded) == pytest.approx(70 / FPS, abs=1 / FPS)
        data = path.read_bytes()
        assert 0 <= data.find(b"moov") < data.find(b"mdat")


def test_a_silent_model_gets_no_audio_track(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    encode_frames(flash_frames(12, 0), path, fps=FPS)

    assert probe(path).audio is None
    assert read_audio(path) is None


def test_a_declared_track_without_samples_fails_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    with (
        pytest.raises(VideoEncodeError, match="No audio"),
        VideoWriter(path, width=64, height=48, fps=FPS, audio_rate=16_000) as writer,
    ):
        writer.write(flash_frames(1, 0)[0])

    assert list(tmp_path.iterdir()) == []


def test_bad_audio_is_refused(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "a.mp4", width=64, height=48, fps=FPS, audio_rate=16_000) as w:
        w.write(flash_frames(1, 0)[0])
        with pytest.raises(ValueError, match="2 x n"):
            w.write_audio(np.zeros((3, 100), dtype=np.float32))
        with pytest.raises(ValueError, match="finite"):
            w.write_audio(np.full((2, 100), np.nan, dtype=np.float32))
        w.write_audio(np.zeros((2, 100), dtype=np.float32))
    with VideoWriter(tmp_path / "b.mp4", width=64, height=48, fps=FPS) as w:
        w.write(flash_frames(1, 0)[0])
        with pytest.raises(RuntimeError, match="no audio track"):
            w.write_audio(np.zeros((2, 100), dtype=np.float32))


def test_previews_and_frame_counts_work_on_files_with_audio(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    encode_frames(flash_frames(30, 3), path, fps=FPS, audio=Audio(np.full((1, 800), 0.3), 8000))

    thumbnail(path, tmp_path / "thumb.webp")
    spritesheet(path, tmp_path / "sheet.jpg")

    assert frame_count(path) == 30
    assert (tmp_path / "thumb.webp").stat().st_size > 0
    assert (tmp_path / "sheet.jpg").stat().st_size > 0
