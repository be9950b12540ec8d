"""VideoWriter / encode_frames / probe / frame access, checked by decoding real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reel.media.video import (
    VideoDecodeError,
    VideoEncodeError,
    VideoInfo,
    VideoWriter,
    encode_frames,
    frame_at,
    frame_count,
    last_frame,
    probe,
    sample_frames,
)


def grey_frames(n: int, *, width: int = 64, height: int = 48, step: int = 8) -> list[np.ndarray]:
    """Frame *i* is a flat grey of level ``i * step``: easy to recognise after decoding."""
    return [np.full((height, width, 3), (i * step) % 256, dtype=np.uint8) for i in range(n)]


def level(frame: np.ndarray) -> float:
    return float(frame.mean())


def test_encode_then_probe_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out" / "clip.mp4"

    info = encode_frames(grey_frames(24), path, fps=12)

    expected = VideoInfo(width=64, height=48, fps=12.0, frames=24, duration_s=2.0, codec="h264")
    assert info == expected
    assert probe(path) == expected
    assert sorted(p.name for p in path.parent.iterdir()) == ["clip.mp4"]


def test_moov_atom_comes_first_for_progressive_playback(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    encode_frames(grey_frames(12), path, fps=12)

    data = path.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")


def test_pixels_survive_encoding(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 96, dtype=np.float32)[None, :, None]
    base = np.broadcast_to(gradient, (64, 96, 3)).astype(np.uint8).copy()
    base[16:48, 24:72] = rng.integers(0, 255, size=3, dtype=np.uint8)
    path = tmp_path / "clip.mp4"
    encode_frames([base] * 6, path, fps=6, crf=18)

    decoded = frame_at(path, 0)

    assert decoded.shape == base.shape
    assert np.abs(decoded.astype(int) - base.astype(int)).mean() < 3


@pytest.mark.parametrize(("width", "height"), [(63, 48), (64, 47), (0, 48), (64, -2)])
def test_odd_or_empty_sizes_are_rejected(tmp_path: Path, width: int, height: int) -> None:
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "x.mp4", width=width, height=height, fps=24)


def test_bad_fps_and_crf_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fps"):
        VideoWriter(tmp_path / "x.mp4", width=64, height=48, fps=0)
    with pytest.raises(ValueError, match="crf"):
        VideoWriter(tmp_path / "x.mp4", width=64, height=48, fps=24, crf=60)


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((48, 64, 3), dtype=np.float32),
        np.zeros((48, 64, 4), dtype=np.uint8),
        np.zeros((64, 48, 3), dtype=np.uint8),
    ],
    ids=["float", "rgba", "transposed"],
)
def test_wrong_frames_are_rejected_and_nothing_is_left(tmp_path: Path, frame: np.ndarray) -> None:
    path = tmp_path / "clip.mp4"
    with pytest.raises(ValueError, match="uint8"):
        with VideoWriter(path, width=64, height=48, fps=24) as writer:
            writer.write(grey_frames(1)[0])
            writer.write(frame)

    assert list(tmp_path.iterdir()) == []


def test_an_error_inside_the_block_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(path, width=64, height=48, fps=24) as writer:
            for frame in grey_frames(10):
                writer.write(frame)
            raise RuntimeError("boom")

    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_only_replaced_on_success(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with VideoWriter(path, width=64, height=48, fps=24) as writer:
            writer.write(grey_frames(1)[0])
            raise RuntimeError
    assert path.read_bytes() == b"previous"

    encode_frames(grey_frames(3), path, fps=24)

    assert probe(path).frames == 3
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_writing_no_frames_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(VideoEncodeError):
        with VideoWriter(tmp_path / "clip.mp4", width=64, height=48, fps=24):
            pass
    with pytest.raises(ValueError, match="no frames"):
        encode_frames([], tmp_path / "clip.mp4", fps=24)
    assert list(tmp_path.iterdir()) == []


def test_write_outside_the_context_manager_is_refused(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "clip.mp4", width=64, height=48, fps=24)
    with pytest.raises(RuntimeError, match="context manager"):
        writer.write(grey_frames(1)[0])


def test_encode_frames_accepts_a_generator(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    info = encode_frames((f for f in grey_frames(5, width=32, height=32)), path, fps=5)
    assert (info.width, info.height, info.frames, info.duration_s) == (32, 32, 5, 1.0)


def test_probe_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VideoDecodeError) as caught:
        probe(tmp_path / "missing.mp4")
    assert caught.value.message
    assert caught.value.__cause__ is not None


def test_probe_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(b"\x00not a video at all" * 500)
    with pytest.raises(VideoDecodeError):
        probe(path)


def test_probe_rejects_a_truncated_file(tmp_path: Path) -> None:
    full = tmp_path / "full.mp4"
    encode_frames(grey_frames(12), full, fps=12)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(full.read_bytes()[:600])

    with pytest.raises(VideoDecodeError):
        probe(truncated)


def test_frame_at_picks_the_frame_on_screen(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    encode_frames(grey_frames(30), path, fps=10)  # frame i shows level 8 * i

    assert level(frame_at(path, 0)) == pytest.approx(0, abs=3)
    assert level(frame_at(path, 0.05)) == pytest.approx(0, abs=3)
    assert level(frame_at(path, 1.0)) == pytest.approx(80, abs=3)
    assert level(frame_at(path, 2.55)) == pytest.approx(200, abs=3)
    assert level(frame_at(path, 99)) == pytest.approx(232, abs=3)
    assert frame_at(path, 1.0).shape == (48, 64, 3)
    with pytest.raises(ValueError):
        frame_at(path, -1)


def test_last_frame(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    encode_frames(grey_frames(30), path, fps=10)

    frame = last_frame(path)

    assert frame.shape == (48, 64, 3)
    assert frame.dtype == np.uint8
    assert level(frame) == pytest.approx(232, abs=3)


def test_last_frame_of_a_long_video_after_several_keyframes(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    encode_frames(grey_frames(600, width=32, height=32, step=1), path, fps=30)

    assert level(last_frame(path)) == pytest.approx(599 % 256, abs=3)
    assert level(frame_at(path, 10.0)) == pytest.approx(300 % 256, abs=3)


def test_frame_count_and_sample_frames(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    encode_frames(grey_frames(20), path, fps=10)

    assert frame_count(path) == 20
    sampled = list(sample_frames(path, [0, 0, 5, 19, 25], width=32))

    assert [f.shape for f in sampled] == [(24, 32, 3)] * 5
    assert [round(level(f) / 8) for f in sampled] == [0, 0, 5, 19, 19]
    assert list(sample_frames(path, [])) == []
    with pytest.raises(ValueError, match="sorted"):
        list(sample_frames(path, [3, 1]))
