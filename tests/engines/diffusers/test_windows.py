"""Editing a long source window by window: every frame once, seams cross-faded (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from reel.engines.diffusers.segments import Frames, Segment, plan_segments
from reel.engines.diffusers.windows import edit_windows


def source(total: int) -> list[Frames]:
    """Frame ``i`` is a 2x2 image whose every value is ``i``."""
    return [np.full((2, 2, 3), i, dtype=np.uint8) for i in range(total)]


@pytest.mark.parametrize("total", [1, 4, 5, 9, 10, 24, 37, 120])
@pytest.mark.parametrize(("max_frames", "overlap"), [(5, 2), (9, 4), (13, 4), (9, 1)])
def test_an_unchanged_edit_gives_back_the_source(total: int, max_frames: int, overlap: int) -> None:
    plan = plan_segments(total, max_frames=max_frames, temporal_ratio=4, overlap=overlap)
    seen: list[list[int]] = []
    out: list[Frames] = []

    def edit(segment: Segment, window: Frames) -> Frames:
        seen.append([int(f[0, 0, 0]) for f in window])
        return window

    edit_windows(plan, iter(source(total)), edit, out.extend)
    assert [int(f[0, 0, 0]) for f in out] == list(range(total))
    start = 0
    for segment, frames in zip(plan.segments, seen, strict=True):
        # Each window is the source from `skip` frames back, padded with its last frame.
        first = start - segment.skip
        expected = [min(first + i, total - 1) for i in range(segment.frames)]
        assert frames == expected and len(frames) == segment.frames
        start += segment.keep


def test_seams_fade_from_one_window_to_the_next() -> None:
    plan = plan_segments(12, max_frames=9, temporal_ratio=4, overlap=4)
    assert [(s.frames, s.keep, s.skip) for s in plan.segments] == [(9, 9, 0), (9, 3, 4)]
    batches: list[Frames] = []

    def edit(segment: Segment, window: Frames) -> Frames:
        return np.full_like(window, 100 * (segment.index + 1))  # 100, then 200

    edit_windows(plan, iter(source(12)), edit, batches.append)
    values = [int(f[0, 0, 0]) for batch in batches for f in batch]
    # The first window alone, four frames fading 1/5 .. 4/5 of the way, the second alone.
    assert values == [100] * 5 + [120, 140, 160, 180] + [200] * 3
    assert [len(b) for b in batches] == [
        5,
        7,
    ]  # the overlap is held back until the next window is edited


def test_a_window_of_the_wrong_length_is_an_error() -> None:
    plan = plan_segments(9, max_frames=9, temporal_ratio=4)
    with pytest.raises(ValueError, match="edited 8 frames, expected 9"):
        edit_windows(plan, iter(source(9)), lambda _s, w: w[:-1], lambda _f: None)
    with pytest.raises(ValueError, match="ran out of frames"):
        edit_windows(plan, iter(source(8)), lambda _s, w: w, lambda _f: None)
