"""One progress bar over all segments and steps (no model needed)."""

from __future__ import annotations

import pytest

from reel.engines.base import Interrupted
from reel.engines.diffusers.progress import StepProgress
from reel.engines.diffusers.segments import SegmentPlan, plan_segments
from reel.types import Stage


def drive(progress: StepProgress, plan: SegmentPlan, steps: int) -> None:
    """What the engine does per segment: begin, a callback per step, encoding, end."""
    for segment in plan.segments:
        progress.begin(segment)
        callback = progress.step_callback(steps)
        for step in range(steps):
            assert callback(None, step, 999 - step, {"latents": 1}) == {"latents": 1}
        progress.encoding()
        progress.end()


def test_one_rising_bar_over_three_segments() -> None:
    calls: list[tuple[Stage, float]] = []
    plan = plan_segments(360, max_frames=121, temporal_ratio=4)  # 15 s at 24 fps
    drive(StepProgress(lambda s, p: calls.append((s, p)), plan), plan, steps=50)

    percents = [p for _, p in calls]
    assert percents == sorted(percents)
    assert percents[0] == 0 and percents[-1] < 98  # the worker reports storing at 99
    stages = [s for s, _ in calls]
    assert stages.count(Stage.DECODING) == stages.count(Stage.ENCODING) == 3
    assert stages.count(Stage.GENERATING) == 3 * 50  # begin + 49 steps, per segment
    # Equal segments get equal thirds of the bar.
    encoding = [p for s, p in calls if s is Stage.ENCODING]
    assert encoding == pytest.approx([98 / 3 * (n + 0.92) for n in range(3)], abs=0.01)


def test_interrupt_from_the_sink_propagates_out_of_the_callback() -> None:
    def sink(stage: Stage, percent: float) -> None:
        if percent > 10:
            raise Interrupted("canceled")

    plan = plan_segments(20, max_frames=21, temporal_ratio=4)
    progress = StepProgress(sink, plan)
    progress.begin(plan.segments[0])
    callback = progress.step_callback(4)
    with pytest.raises(Interrupted):
        callback(None, 0, 1, {})  # 98 * 0.85 / 4 = 20.8 > 10
