"""Thumbnails and spritesheets, checked by reading the images back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reel.media.previews import spritesheet, thumbnail
from reel.media.video import VideoDecodeError, encode_frames


def numbered_video(path: Path, *, frames: int, width: int = 640, height: int = 360) -> Path:
    """Frame *i* is a flat grey of level ``8 * i`` (so at most 32 distinct frames)."""
    encode_frames(
        (np.full((height, width, 3), 8 * i, dtype=np.uint8) for i in range(frames)),
        path,
        fps=10,
    )
    return path


def test_thumbnail_is_a_webp_of_the_frame_a_third_in(tmp_path: Path) -> None:
    video = numbered_video(tmp_path / "clip.mp4", frames=30)
    out = tmp_path / "previews" / "thumb.webp"

    thumbnail(video, out)

    with Image.open(out) as image:
        assert image.format == "WEBP"
        assert image.size == (480, 270)
        assert np.asarray(image.convert("RGB")).mean() == pytest.approx(80, abs=4)  # frame 10
    assert sorted(p.name for p in out.parent.iterdir()) == ["thumb.webp"]


def test_thumbnail_width_and_no_upscaling(tmp_path: Path) -> None:
    video = numbered_video(tmp_path / "clip.mp4", frames=6, width=64, height=36)

    thumbnail(video, tmp_path / "small.webp", width=32)
    thumbnail(video, tmp_path / "native.webp")

    with Image.open(tmp_path / "small.webp") as small, Image.open(tmp_path / "native.webp") as big:
        assert small.size == (32, 18)
        assert big.size == (64, 36)


def test_spritesheet_is_a_jpeg_grid_of_evenly_spaced_frames(tmp_path: Path) -> None:
    video = numbered_video(tmp_path / "clip.mp4", frames=25)
    out = tmp_path / "sprites.jpg"

    spritesheet(video, out)

    with Image.open(out) as image:
        assert image.format == "JPEG"
        assert image.size == (5 * 160, 5 * 90)
        sheet = np.asarray(image.convert("L"), dtype=np.float32)
    tiles = [
        sheet[r * 90 : (r + 1) * 90, c * 160 : (c + 1) * 160] for r in range(5) for c in range(5)
    ]
    # 25 frames into 25 tiles: tile i is frame i, read left to right, top to bottom.
    assert [round(float(t.mean()) / 8) for t in tiles] == list(range(25))


def test_spritesheet_layout_options(tmp_path: Path) -> None:
    video = numbered_video(tmp_path / "clip.mp4", frames=30, width=320, height=240)
    out = tmp_path / "sprites.jpg"

    spritesheet(video, out, columns=3, rows=2, tile_width=100)

    with Image.open(out) as image:
        assert image.size == (300, 150)
        sheet = np.asarray(image.convert("L"), dtype=np.float32)
    means = [
        float(sheet[r * 75 : (r + 1) * 75, c * 100 : (c + 1) * 100].mean())
        for r in range(2)
        for c in range(3)
    ]
    # Six spans of five frames; each tile is the middle frame of its span: 2, 7, 12, ...
    assert [round(m / 8) for m in means] == [2, 7, 12, 17, 22, 27]


def test_spritesheet_of_a_video_shorter_than_the_grid(tmp_path: Path) -> None:
    video = numbered_video(tmp_path / "clip.mp4", frames=4, width=64, height=36)
    out = tmp_path / "sprites.jpg"

    spritesheet(video, out)

    with Image.open(out) as image:
        assert image.size == (800, 450)
        sheet = np.asarray(image.convert("L"), dtype=np.float32)
    firsts = [round(float(sheet[:90, c * 160 : (c + 1) * 160].mean()) / 8) for c in range(5)]
    assert firsts == [0, 0, 0, 0, 0]
    assert round(float(sheet[-90:, -160:].mean()) / 8) == 3


def test_previews_of_garbage_raise_and_write_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"definitely not a video" * 100)

    with pytest.raises(VideoDecodeError):
        thumbnail(bad, tmp_path / "thumb.webp")
    with pytest.raises(VideoDecodeError):
        spritesheet(bad, tmp_path / "sprites.jpg")

    assert [p.name for p in tmp_path.iterdir()] == ["bad.mp4"]


def test_bad_arguments(tmp_path: Path) -> None:
    video = numbered_video(tmp_path / "clip.mp4", frames=2, width=64, height=36)
    with pytest.raises(ValueError):
        thumbnail(video, tmp_path / "t.webp", width=0)
    with pytest.raises(ValueError):
        spritesheet(video, tmp_path / "s.jpg", columns=0)
