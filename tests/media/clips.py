"""Small real MP4s made with PyAV: H.264 video, with or without an AAC sine track."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def clip(
    path: Path,
    *,
    frames: int = 12,
    fps: int = 12,
    size: tuple[int, int] = (128, 96),
    audio: bool = True,
    shade: int = 60,
) -> Path:
    """A flat grey clip of ``frames`` frames; ``audio`` adds a 440 Hz mono AAC track."""
    width, height = size
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=48000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(
                np.full((height, width, 3), shade, np.uint8), format="rgb24"
            )
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            n = 48000 * frames // fps
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    wave[None, start : start + 1024].copy(), format="fltp", layout="mono"
                )
                chunk.sample_rate, chunk.pts = 48000, start
                chunk.time_base = Fraction(1, 48000)
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


def streams(path: Path) -> dict[str, int]:
    """Decoded frames per stream type: proof that every stream still plays."""
    counts: dict[str, int] = {}
    with av.open(str(path)) as container:
        for stream in container.streams:
            counts[stream.type] = sum(1 for _ in container.decode(stream))
            container.seek(0)
    return counts
