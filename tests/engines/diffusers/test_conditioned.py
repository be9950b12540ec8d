"""The source frames that extensions and edits condition passes on (no model needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reel.engines.base import EngineError
from reel.engines.diffusers.conditioned import (
    SourceWindows,
    probe_source,
    source_tail,
    window_start,
)
from reel.engines.diffusers.segments import plan_segments
from reel.media.video import encode_frames


def numbered(tmp_path: Path, frames: int, fps: int) -> Path:
    """Flat grey frames, frame ``i`` at level ``10 i``, 32x16."""
    path = tmp_path / "numbered.mp4"
    encode_frames([np.full((16, 32, 3), 10 * i, np.uint8) for i in range(frames)], path, fps=fps)
    return path


def levels(frames: np.ndarray) -> list[int]:
    return [round(float(frame.mean()) / 10) for frame in frames]


def test_the_tail_is_sampled_at_the_generation_rate(tmp_path: Path) -> None:
    source = probe_source(numbered(tmp_path, 20, fps=8), label="test")
    tail = source_tail(source, 3, fps=4, width=24, height=24)
    assert tail.shape == (3, 24, 24, 3)  # cover-fitted
    assert levels(tail) == [15, 17, 19]  # every other frame at half the rate, ending on the last
    assert levels(source_tail(source, 4, fps=8, width=32, height=16)) == [16, 17, 18, 19]
    short = probe_source(numbered(tmp_path, 2, fps=8), label="test")
    assert levels(source_tail(short, 5, fps=8, width=32, height=16)) == [0, 0, 0, 0, 1]


def test_windows_come_in_order_and_pad_past_the_end(tmp_path: Path) -> None:
    source = probe_source(numbered(tmp_path, 10, fps=4), label="test")
    windows = SourceWindows(source, 32, 16)
    assert levels(windows.window(0, 5)) == [0, 1, 2, 3, 4]
    assert levels(windows.window(3, 5)) == [3, 4, 5, 6, 7]
    assert levels(windows.window(7, 5)) == [7, 8, 9, 9, 9]
    with pytest.raises(ValueError, match="in order"):
        windows.window(2, 3)


def test_window_starts_follow_the_plan() -> None:
    plan = plan_segments(24, max_frames=17, temporal_ratio=8, overlap=9)
    assert [window_start(plan, s) for s in plan.segments] == [0, 8]


def test_an_unreadable_source_is_an_engine_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(EngineError, match="could not read the source video"):
        probe_source(bad, label="test")
    with pytest.raises(EngineError, match="needs its source video"):
        probe_source(None, label="test")
