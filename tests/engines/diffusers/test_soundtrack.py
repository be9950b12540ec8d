"""Joining the sound of chained passes: on the video's timeline, cross-faded where they overlap."""

from __future__ import annotations

import numpy as np
import pytest

from reel.engines.diffusers.segments import plan_segments
from reel.engines.diffusers.soundtrack import SoundChain, fit_length

RATE, FPS = 1000, 10


def test_one_pass_comes_out_whole_and_cut_to_its_frames() -> None:
    plan = plan_segments(41, max_frames=81, temporal_ratio=8, overlap=9)
    chain = SoundChain(rate=RATE, fps=FPS)
    sound = np.random.default_rng(0).uniform(-1, 1, (2, 5000)).astype(np.float32)

    out = np.concatenate([chain.add(sound, plan.segments[0]), chain.finish()], axis=1)  # type: ignore[list-item]

    assert np.array_equal(out, sound[:, :4100])  # 41 frames at 10 fps = 4.1 s


def test_later_passes_are_cross_faded_over_the_overlapping_frames() -> None:
    plan = plan_segments(57, max_frames=33, temporal_ratio=8, overlap=9)
    assert [s.frames for s in plan.segments] == [33, 33]
    chain = SoundChain(rate=RATE, fps=FPS)
    first = np.full((1, 3300), 0.5, dtype=np.float32)
    second = np.full((1, 3300), -0.5, dtype=np.float32)

    parts = [chain.add(first, plan.segments[0]), chain.add(second, plan.segments[1])]
    out = np.concatenate([*parts, chain.finish()], axis=1)  # type: ignore[list-item]

    # 33 + 33 - 9 frames of sound: the passes meet at frame 24 and overlap for 9 frames.
    assert out.shape == (1, 5700)
    assert np.all(out[0, :2400] == 0.5) and np.all(out[0, 3300:] == -0.5)
    seam = out[0, 2400:3300]
    assert seam[0] == pytest.approx(0.5) and seam[-1] == pytest.approx(-0.5)
    assert np.all(np.diff(seam) <= 1e-6)  # a smooth fade, no jump


def test_short_sound_is_padded_and_order_is_enforced() -> None:
    plan = plan_segments(57, max_frames=33, temporal_ratio=8, overlap=9)
    chain = SoundChain(rate=RATE, fps=FPS)
    head = chain.add(np.ones((2, 100), dtype=np.float32), plan.segments[0])
    assert head.shape == (2, 2400) and np.all(head[:, 100:] == 0)
    with pytest.raises(ValueError, match="in order"):
        chain.add(np.ones((2, 100), dtype=np.float32), plan.segments[0])
    assert fit_length(np.ones((1, 5), dtype=np.float32), 3).shape == (1, 3)
