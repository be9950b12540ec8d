"""What the sandbox does with a source video (an edit) and characters' reference frames.

An edit replays the source at the request's size and frame rate with a visible change: the
colour channels rotated (red becomes green, green blue, blue red), so nobody mistakes it for the
source; the sandbox then draws the new prompt and its label over it as on any video. A
character's reference frame is shown as an inset in the top-left corner (the second one beside
it), standing in for a model's reference conditioning.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from reel.engines.base import EngineError
from reel.media.video import RGBFrame, VideoError, probe, sample_frames

__all__ = ["EditedScene", "References"]


class EditedScene:
    """The source video's frames, resampled to ``fps`` and ``width x height``, recoloured."""

    starts_on_image = False

    def __init__(self, source: Path, width: int, height: int, fps: int, total: int) -> None:
        try:
            info = probe(source)
        except VideoError as exc:
            raise EngineError("Sandbox engine: could not read the source video") from exc
        picks = [min(info.frames - 1, math.floor(i * info.fps / fps + 1e-6)) for i in range(total)]
        self._frames: Iterator[RGBFrame] = sample_frames(source, picks)
        self._size = (width, height)
        self._fps = fps
        self._next = 0

    def frame(self, index: int) -> RGBFrame:
        if index != self._next:
            raise EngineError("Sandbox engine: edit frames must be read in order")
        self._next += 1
        try:
            frame = next(self._frames)
        except (StopIteration, VideoError) as exc:
            raise EngineError("Sandbox engine: could not read the source video") from exc
        if frame.shape[1] != self._size[0] or frame.shape[0] != self._size[1]:
            frame = np.asarray(ImageOps.fit(Image.fromarray(frame), self._size), dtype=np.uint8)
        return np.ascontiguousarray(frame[..., [2, 0, 1]])  # the visible change

    def motion(self, index: int) -> tuple[float, float]:
        t = index / self._fps
        return 0.5 + 0.4 * math.sin(2 * math.pi * t / 3.0), 0.5


class References:
    """Reference frames drawn as small opaque insets along the top-left of every frame."""

    def __init__(self, paths: Sequence[Path], width: int, height: int) -> None:
        side = max(2, min(width, height) // 4)
        self._insets: list[RGBFrame] = []
        for path in paths:
            try:
                with Image.open(path) as image:
                    inset = ImageOps.fit(image.convert("RGB"), (side, side))
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise EngineError("Sandbox engine: could not read a reference frame") from exc
            self._insets.append(np.asarray(inset, dtype=np.uint8))
        self._margin = max(1, side // 8)

    def draw(self, frame: RGBFrame) -> None:
        x = self._margin
        for inset in self._insets:
            h, w = inset.shape[:2]
            if x + w > frame.shape[1] or self._margin + h > frame.shape[0]:
                return
            frame[self._margin : self._margin + h, x : x + w] = inset
            x += w + self._margin
