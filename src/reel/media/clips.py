"""Whole videos as inputs: an uploaded MP4 checked and re-encoded, and two videos joined.

An upload is never handed to an engine as sent: :func:`normalize` decodes it (MP4/MOV demuxer
only, see :mod:`reel.media.video`), checks its size and length, and writes a fresh H.264 file
of a known size, cut to whole seconds, with its sound (if any) re-encoded as AAC.
:func:`join` appends a segment to a video at the first one's size and frame rate, with the two
soundtracks cross-faded at the join.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image, ImageOps

from reel.media.audio import Audio, Samples
from reel.media.video import (
    RGBFrame,
    VideoDecodeError,
    VideoInfo,
    encode_frames,
    probe,
    read_audio,
    sample_frames,
)

__all__ = [
    "CROSSFADE_S",
    "FADE_IN_S",
    "UPLOAD_MAX_BYTES",
    "UPLOAD_MAX_PIXELS",
    "Normalized",
    "join",
    "normalize",
    "still_frames",
]

#: Largest video file accepted as an upload (extensions, edits, characters).
UPLOAD_MAX_BYTES: Final = 64 * 1024 * 1024
#: Largest frame of an uploaded video, in pixels (4K).
UPLOAD_MAX_PIXELS: Final = 3840 * 2160
#: How long the source's sound fades out before the join.
CROSSFADE_S: Final = 0.25
#: How long the segment's sound fades in from its first frame (long enough to avoid a click).
FADE_IN_S: Final = 0.02


@dataclass(frozen=True, slots=True)
class Normalized:
    """A re-encoded upload: its file, whole seconds, size and whether it has sound."""

    path: Path
    seconds: int
    width: int
    height: int
    fps: int


def normalize(
    data: bytes,
    work: Path,
    *,
    fit: Callable[[int, int], tuple[int, int]] | None,
    min_seconds: float,
    max_seconds: float,
) -> Normalized:
    """Check an uploaded video and re-encode it (to the size ``fit`` picks for its width and
    height, cover-cropped, or its own even size), cut to whole seconds. Raises
    :class:`VideoDecodeError` with a message for users."""
    if len(data) > UPLOAD_MAX_BYTES:
        raise VideoDecodeError(f"the video is larger than {UPLOAD_MAX_BYTES} bytes")
    raw = work / "upload.bin"
    raw.write_bytes(data)
    info = probe(raw)
    if info.width * info.height > UPLOAD_MAX_PIXELS:
        raise VideoDecodeError(f"the video's frames are larger than {UPLOAD_MAX_PIXELS} pixels")
    if info.duration_s + 1e-3 < min_seconds:
        raise VideoDecodeError(f"the video must be at least {min_seconds:g} s long")
    if info.duration_s > max_seconds + 0.5:
        raise VideoDecodeError(f"the video must be at most {max_seconds:g} s long")
    seconds = max(1, min(math.floor(info.duration_s + 1e-3), math.floor(max_seconds)))
    fps = max(1, min(60, round(info.fps)))
    even = (info.width - info.width % 2, info.height - info.height % 2)
    width, height = fit(info.width, info.height) if fit is not None else even
    total = seconds * fps
    frames = _resampled(raw, info, fps, total, (width, height))
    audio = _cut(read_audio(raw), seconds)
    out = work / "normalized.mp4"
    encode_frames(frames, out, fps=fps, audio=audio)
    raw.unlink()
    return Normalized(out, seconds, width, height, fps)


def still_frames(video: Path, count: int, *, width: int = 512) -> list[RGBFrame]:
    """``count`` frames spread over ``video`` (reference frames of a character)."""
    frames = probe(video).frames
    picks = sorted({min(frames - 1, round((i + 0.5) * frames / count)) for i in range(count)})
    return list(sample_frames(video, picks, width=width))


def join(first: Path, second: Path, out: Path) -> VideoInfo:
    """``first`` followed by ``second`` (scaled to ``first``'s size and frame rate), with the
    source's sound faded out into the segment's, each on its own pictures (see ``_crossfaded``)."""
    a, b = probe(first), probe(second)
    fps = max(1, round(a.fps))
    size = (a.width - a.width % 2, a.height - a.height % 2)
    tail = max(1, round(b.duration_s * fps))

    def frames() -> Iterator[RGBFrame]:
        yield from _resampled(first, a, fps, a.frames, size)
        yield from _resampled(second, b, fps, tail, size)

    sound = _crossfaded(read_audio(first), read_audio(second), a.frames / fps)
    return encode_frames(frames(), out, fps=fps, audio=sound)


def _resampled(
    path: Path, info: VideoInfo, fps: int, total: int, size: tuple[int, int]
) -> Iterator[RGBFrame]:
    """``total`` frames of ``path`` at ``fps`` (nearest in time), each at ``size``."""
    picks = [min(info.frames - 1, math.floor(i * info.fps / fps + 1e-6)) for i in range(total)]
    for frame in sample_frames(path, picks):
        if frame.shape[1] != size[0] or frame.shape[0] != size[1]:
            image = ImageOps.fit(Image.fromarray(frame), size, Image.Resampling.BILINEAR)
            frame = np.asarray(image, dtype=np.uint8)
        yield frame


def _cut(audio: Audio | None, seconds: float) -> Audio | None:
    if audio is None:
        return None
    return Audio(audio.samples[:, : round(seconds * audio.rate)].copy(), audio.rate)


def _crossfaded(first: Audio | None, second: Audio | None, at_s: float) -> Audio | None:
    """``first`` fading out over its last :data:`CROSSFADE_S`, then ``second`` from ``at_s``
    (faded in over :data:`FADE_IN_S`, no click). Each sound stays on its own pictures: the
    segment's first sound is heard with its first frame, never before it."""
    if first is None and second is None:
        return None
    rate = (first or second).rate  # type: ignore[union-attr]
    channels = max(x.channels for x in (first, second) if x is not None)
    a = _as(first, rate, channels)
    b = _as(second, rate, channels).copy()
    join_at = round(at_s * rate)
    out = np.zeros((channels, join_at + b.shape[1]), dtype=np.float32)
    out[:, : min(join_at, a.shape[1])] = a[:, :join_at]
    fade = min(round(CROSSFADE_S * rate), join_at)
    out[:, join_at - fade : join_at] *= np.cos(np.linspace(0.0, np.pi / 2, fade, dtype=np.float32))
    rise = min(round(FADE_IN_S * rate), b.shape[1])
    b[:, :rise] *= np.sin(np.linspace(0.0, np.pi / 2, rise, dtype=np.float32))
    out[:, join_at:] = b
    return Audio(np.clip(out, -1, 1), rate)


def _as(audio: Audio | None, rate: int, channels: int) -> Samples:
    if audio is None:
        return np.zeros((channels, 0), dtype=np.float32)
    samples = audio.samples
    if audio.rate != rate and samples.shape[1]:
        n = round(samples.shape[1] * rate / audio.rate)
        xs = np.linspace(0, samples.shape[1] - 1, n)
        samples = np.stack([np.interp(xs, np.arange(samples.shape[1]), c) for c in samples])
    if samples.shape[0] < channels:
        samples = np.repeat(samples[:1], channels, axis=0)
    return samples.astype(np.float32)
