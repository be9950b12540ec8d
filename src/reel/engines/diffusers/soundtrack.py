"""One soundtrack from the passes of a chained video, cross-faded where the passes overlap.

A pass after the first starts on the last ``overlap`` frames of the one before (its
conditioning frames), so for those ``overlap / fps`` seconds both passes have sound. The two
are cross-faded there (equal power: the passes' sounds are unrelated), every other sample is
kept as rendered, and the joined track stays on the video's timeline to the sample.

Pure numpy: no torch, so the join is tested on its own.
"""

from __future__ import annotations

import numpy as np

from reel.engines.diffusers.segments import Segment
from reel.media.audio import Samples

__all__ = ["SoundChain", "fit_length"]


def fit_length(samples: Samples, length: int) -> Samples:
    """``samples`` cut or zero-padded to exactly ``length`` samples per channel."""
    have = samples.shape[1]
    if have >= length:
        return samples[:, :length]
    pad = np.zeros((samples.shape[0], length - have), dtype=samples.dtype)
    return np.concatenate([samples, pad], axis=1)


class SoundChain:
    """Feed each pass's sound in order with :meth:`add`; it returns what is final so far."""

    def __init__(self, *, rate: int, fps: int) -> None:
        if rate <= 0 or fps <= 0:
            raise ValueError(f"rate and fps must be positive, got {rate}, {fps}")
        self.rate = rate
        self._fps = fps
        self._tail: Samples | None = None

    def _samples(self, frames: int) -> int:
        return round(frames * self.rate / self._fps)

    def add(self, samples: Samples, segment: Segment) -> Samples:
        """The sound of ``segment`` (``channels x n``); returns the samples now final."""
        audio = fit_length(samples.astype(np.float32, copy=False), self._samples(segment.frames))
        overlap = self._samples(segment.overlap)
        if self._tail is not None:
            if segment.index == 0 or self._tail.shape[0] != audio.shape[0]:
                raise ValueError("segments must come in order, with the same channels")
            width = min(self._tail.shape[1], audio.shape[1])
            ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)
            fade_in, fade_out = np.sin(ramp * np.pi / 2), np.cos(ramp * np.pi / 2)
            seam = self._tail[:, :width] * fade_out + audio[:, :width] * fade_in
            audio = np.concatenate([seam, audio[:, width:]], axis=1)
        cut = max(0, audio.shape[1] - overlap)
        self._tail = audio[:, cut:]
        return audio[:, :cut]

    def finish(self) -> Samples | None:
        """The last pass's final samples (``None`` if nothing was added)."""
        tail, self._tail = self._tail, None
        return tail
