"""Still previews of a finished video: a WebP thumbnail and a JPEG spritesheet.

Both decode the video once, sequentially, converting (and downscaling) only the frames they
keep, so memory stays bounded by one full frame plus the output image.
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path

from PIL import Image

from reel.media.video import VideoDecodeError, frame_count, last_frame, sample_frames

__all__ = ["last_frame_png", "spritesheet", "thumbnail"]


def last_frame_png(video_path: Path) -> bytes:
    """The video's final frame as PNG bytes (the start image of a remix)."""
    out = io.BytesIO()
    Image.fromarray(last_frame(video_path)).save(out, format="PNG")
    return out.getvalue()


def thumbnail(video_path: Path, out_path: Path, *, width: int = 480) -> None:
    """Write a WebP of the frame about a third of the way in, at most ``width`` pixels wide."""
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    total = _frames(video_path)
    frame = next(sample_frames(video_path, [total // 3]), None)
    if frame is None:
        raise VideoDecodeError("The video has no frames")
    image = Image.fromarray(frame)
    if image.width > width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    _save_atomic(image, Path(out_path), "WEBP", quality=80, method=4)


def spritesheet(
    video_path: Path,
    out_path: Path,
    *,
    columns: int = 5,
    rows: int = 5,
    tile_width: int = 160,
) -> None:
    """Write a JPEG grid of ``columns x rows`` evenly spaced frames, left to right, top down.

    Each tile is ``tile_width`` wide with the video's aspect ratio; tile *i* shows the frame
    in the middle of the *i*-th of ``columns * rows`` equal spans of the video.
    """
    if columns <= 0 or rows <= 0 or tile_width <= 0:
        raise ValueError("columns, rows and tile_width must be positive")
    tiles = columns * rows
    total = _frames(video_path)
    indices = [min(total - 1, int((i + 0.5) * total / tiles)) for i in range(tiles)]
    sheet: Image.Image | None = None
    for i, frame in enumerate(sample_frames(video_path, indices, width=tile_width)):
        tile = Image.fromarray(frame)
        if sheet is None:
            sheet = Image.new("RGB", (tile.width * columns, tile.height * rows))
        sheet.paste(tile, ((i % columns) * tile.width, (i // columns) * tile.height))
    if sheet is None:
        raise VideoDecodeError("The video has no frames")
    _save_atomic(sheet, Path(out_path), "JPEG", quality=80, optimize=True)


def _frames(video_path: Path) -> int:
    total = frame_count(video_path)
    if total <= 0:
        raise VideoDecodeError("The video has no frames")
    return total


def _save_atomic(image: Image.Image, path: Path, fmt: str, **params: int | bool) -> None:
    """Save beside ``path`` and rename into place, so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    try:
        image.save(tmp, format=fmt, **params)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
