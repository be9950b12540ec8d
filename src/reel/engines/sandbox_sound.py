"""The sandbox's soundtrack: a synthesized tone bed with blips that follow the picture.

Clearly artificial on purpose (pure sine chords and beeps), so nobody mistakes it for a model's
sound, yet a real audio track for every client and test of the embedded default. The chord is
chosen by the prompt; a lead tone's pitch follows the moving shape's height and its stereo
position the shape's left-right position; a blip marks every frame where the shape turns.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from typing import Final

import numpy as np
import numpy.typing as npt

from reel.media.audio import Samples

__all__ = ["SOUND_RATE", "soundtrack"]

#: Sample rate of the synthesized track (the MP4 writer resamples it to 48 kHz).
SOUND_RATE: Final = 24_000
#: Pentatonic roots from A2 upwards, one picked per prompt.
_ROOTS: Final = (110.0, 123.47, 138.59, 164.81, 185.0)
_CHORDS: Final = ((1.0, 1.5, 2.0), (1.0, 1.25, 1.5), (1.0, 1.2, 1.5), (1.0, 4 / 3, 2.0))
_BLIP_S: Final = 0.07
_FADE_S: Final = 0.02


def soundtrack(prompt: str, motion: npt.NDArray[np.float64], fps: int) -> Samples:
    """Stereo samples at :data:`SOUND_RATE` for a video whose frame ``i`` shows its moving
    shape at ``motion[i] = (x, y)`` (both 0..1: left to right, top to bottom)."""
    frames = motion.shape[0]
    if frames < 1 or motion.shape != (frames, 2) or fps <= 0:
        raise ValueError(f"motion must be frames x 2 with frames >= 1, got {motion.shape}")
    digest = hashlib.sha256(prompt.strip().encode()).digest()
    root = _ROOTS[digest[0] % len(_ROOTS)]
    chord = _CHORDS[digest[1] % len(_CHORDS)]
    tremolo = 0.25 + digest[2] / 255 * 0.75  # Hz

    n = max(1, round(frames / fps * SOUND_RATE))
    t = np.arange(n, dtype=np.float64) / SOUND_RATE
    # The picture's motion, sampled per audio sample (linear between frame times).
    frame_times = np.arange(frames, dtype=np.float64) / fps
    x = np.interp(t, frame_times, motion[:, 0])
    y = np.interp(t, frame_times, motion[:, 1])

    bed = sum(np.sin(2 * math.pi * root * ratio * t) for ratio in chord) / len(chord)
    bed = bed * (0.16 + 0.06 * np.sin(2 * math.pi * tremolo * t))
    # Higher on screen sounds higher: one octave over the frame's height.
    lead_hz = 2 * root * 2.0 ** (1.0 - y)
    lead = 0.14 * np.sin(2 * math.pi * np.cumsum(lead_hz) / SOUND_RATE)

    left = bed + lead * np.sqrt(1.0 - x)
    right = bed + lead * np.sqrt(x)
    blips = _blips(_turns(motion), fps, n, 4 * root)
    samples = np.stack([left + blips, right + blips])
    fade = min(n // 2, round(_FADE_S * SOUND_RATE))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        samples[:, :fade] *= ramp
        samples[:, n - fade :] *= ramp[::-1]
    return np.clip(samples, -1.0, 1.0).astype(np.float32)


def _turns(motion: npt.NDArray[np.float64]) -> list[int]:
    """Frame 0 and every frame where the shape reverses direction, across or up and down."""
    turns = {0}
    for axis in range(2):
        step = np.sign(np.diff(motion[:, axis]))
        moving = np.flatnonzero(step)
        for a, b in itertools.pairwise(moving):
            if step[a] != step[b]:
                turns.add(int(b))
    return sorted(turns)


def _blips(frames: list[int], fps: int, n: int, hz: float) -> npt.NDArray[np.float64]:
    """Short decaying square-ish beeps starting at the given frames."""
    out = np.zeros(n, dtype=np.float64)
    length = round(_BLIP_S * SOUND_RATE)
    t = np.arange(length, dtype=np.float64) / SOUND_RATE
    beep = 0.45 * np.tanh(4 * np.sin(2 * math.pi * hz * t)) * np.exp(-t / (_BLIP_S / 4))
    for frame in frames:
        start = round(frame / fps * SOUND_RATE)
        end = min(n, start + length)
        if start < end:
            out[start:end] += beep[: end - start]
    return out
