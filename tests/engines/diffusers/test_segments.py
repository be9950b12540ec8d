"""Segment planning and joining: counts, balance, and smooth boundaries without a repeated frame."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reel.engines.diffusers.segments import (
    Frames,
    Segment,
    chain_segments,
    plan_segments,
    valid_frame_count,
)


def test_valid_frame_count() -> None:
    assert [valid_frame_count(n, 4) for n in (1, 2, 5, 6, 9, 80, 81, 82)] == [
        1,
        5,
        5,
        9,
        9,
        81,
        81,
        85,
    ]
    assert valid_frame_count(120, 8) == 121


@pytest.mark.parametrize(
    ("total", "max_frames", "ratio", "frames"),
    [
        (240, 121, 4, (121, 121)),  # 10 s at 24 fps, Wan 2.2 TI2V
        (360, 121, 4, (121, 121, 121)),  # 15 s
        (160, 81, 4, (81, 81)),  # 10 s at 16 fps, Wan 2.1
        (240, 121, 8, (121, 121)),  # 10 s at 24 fps, LTX-Video
        (100, 121, 4, (101,)),  # fits one pass: no waste
        (20, 9, 4, (9, 9, 5)),
    ],
)
def test_plans_for_the_sold_durations(
    total: int, max_frames: int, ratio: int, frames: tuple[int, ...]
) -> None:
    plan = plan_segments(total, max_frames=max_frames, temporal_ratio=ratio)
    assert tuple(s.frames for s in plan.segments) == frames
    assert plan.total == total


@given(
    total=st.integers(1, 3000),
    ratio=st.sampled_from([1, 2, 4, 8]),
    k=st.integers(1, 40),
)
def test_plan_invariants(total: int, ratio: int, k: int) -> None:
    max_frames = ratio * k + 1
    plan = plan_segments(total, max_frames=max_frames, temporal_ratio=ratio)
    segs = plan.segments
    assert plan.total == total
    assert all(s.frames == valid_frame_count(s.frames, ratio) <= max_frames for s in segs)
    assert all(1 <= s.keep <= s.frames - s.skip for s in segs)
    # Only the last segment may throw frames away, and never a whole pass' worth.
    assert all(s.keep == s.frames - s.skip for s in segs[:-1])
    assert segs[-1].frames - segs[-1].skip - segs[-1].keep <= ratio - 1
    # As few passes as the model allows.
    fewer = len(segs) - 1
    assert fewer == 0 or max_frames + (fewer - 1) * (max_frames - 1) < total


def test_plan_rejects_invalid_input() -> None:
    with pytest.raises(ValueError, match="4k\\+1"):
        plan_segments(100, max_frames=80, temporal_ratio=4)
    with pytest.raises(ValueError, match="total"):
        plan_segments(0, max_frames=81, temporal_ratio=4)


# --- joining -------------------------------------------------------------------------------

H, W, SPEED = 24, 96, 2  # pixels per frame


def _texture(seed: int = 7) -> Frames:
    """A smooth periodic texture, so a horizontal roll is a smooth camera pan."""
    rng = np.random.default_rng(seed)
    x = np.arange(W)[None, :, None]
    y = np.arange(H)[:, None, None]
    phases = rng.uniform(0, 2 * np.pi, size=(1, 1, 3))
    img = 127 + 100 * np.sin(2 * np.pi * x / W * 2 + phases) * np.cos(2 * np.pi * y / H + phases)
    return img.astype(np.uint8)


def _pan(start: Frames, count: int) -> Frames:
    return np.stack([np.roll(start, -SPEED * k, axis=1) for k in range(count)])


class FakeImageToVideo:
    """Acts like an image-to-video model: starts exactly on its image, then keeps panning."""

    def __init__(self) -> None:
        self.conditions: list[Frames | None] = []

    def __call__(self, segment: Segment, condition: Frames | None) -> Frames:
        self.conditions.append(condition)
        return _pan(_texture() if condition is None else condition, segment.frames)


def _boundary_ratios(video: Frames, boundaries: list[int]) -> list[float]:
    steps = np.abs(np.diff(video.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    inside = np.delete(steps, [b - 1 for b in boundaries])
    median = float(np.median(inside))
    return [float(steps[b - 1]) / median for b in boundaries]


@pytest.mark.parametrize(("total", "max_frames"), [(20, 9), (240, 121), (37, 13)])
def test_joined_video_is_continuous_across_boundaries(total: int, max_frames: int) -> None:
    plan = plan_segments(total, max_frames=max_frames, temporal_ratio=4)
    render = FakeImageToVideo()
    out: list[Frames] = []

    last = chain_segments(plan, render, out.append)

    video = np.concatenate(out)
    assert video.shape[0] == total
    # Every segment after the first is conditioned on the last frame of the one before.
    assert render.conditions[0] is None
    assert all(c is not None for c in render.conditions[1:])
    # The joined video is the single continuous pan: nothing repeated, nothing skipped.
    np.testing.assert_array_equal(video, _pan(_texture(), total))
    np.testing.assert_array_equal(last, video[-1])
    starts = np.cumsum([s.keep for s in plan.segments])[:-1].tolist()
    ratios = _boundary_ratios(video, starts)
    assert len(ratios) == len(plan.segments) - 1
    assert all(0.5 <= r <= 1.5 for r in ratios), ratios


def test_boundary_measure_catches_a_repeated_or_skipped_frame() -> None:
    """The measure above can fail: a repeated boundary frame reads 0, a skipped one ~2x."""
    full = _pan(_texture(), 30)
    repeated = np.concatenate([full[:9], full[8:20]])
    skipped = np.concatenate([full[:9], full[10:21]])
    assert _boundary_ratios(repeated, [9])[0] < 0.1
    assert _boundary_ratios(skipped, [9])[0] > 1.8


def test_image_to_video_chain_starts_on_the_given_image() -> None:
    plan = plan_segments(20, max_frames=9, temporal_ratio=4)
    start = np.roll(_texture(), 5, axis=0)
    render = FakeImageToVideo()
    out: list[Frames] = []
    chain_segments(plan, render, out.append, start_image=start)
    assert render.conditions[0] is start
    np.testing.assert_array_equal(out[0][0], start)


def test_a_segment_of_the_wrong_length_is_an_error() -> None:
    plan = plan_segments(20, max_frames=9, temporal_ratio=4)
    with pytest.raises(ValueError, match="expected 9"):
        chain_segments(plan, lambda s, c: _pan(_texture(), 3), lambda f: None)
