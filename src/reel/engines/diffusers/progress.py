"""One progress bar over every denoising step of every segment of a request.

Each segment gets a share of 0–98 proportional to the frames it generates; inside a share,
denoising steps fill the first 85 %, then ``decoding`` and ``encoding`` follow. The worker
reports ``storing`` at 99 after the engine returns. Every report goes through the task's
:class:`~reel.engines.base.ProgressSink`, which may raise ``Interrupted``: raised from the
step callback, it stops the pipeline before its next step and before any decode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from reel.engines.base import ProgressSink
from reel.engines.diffusers.segments import Segment, SegmentPlan
from reel.types import Stage

__all__ = ["StepCallback", "StepProgress"]

#: The engine reports up to this; the worker reports storing at 99.
_CEILING: Final = 98.0
#: Within one segment's share of the bar: denoising ends here, then decode, then encode.
_DENOISE_END: Final = 0.85
_DECODE_END: Final = 0.92

#: diffusers' ``callback_on_step_end``: ``(pipe, step, timestep, kwargs) -> kwargs``.
StepCallback = Callable[[object, int, object, dict[str, object]], dict[str, object]]


class StepProgress:
    """Maps steps of every segment onto one 0–98 bar (each segment weighted by its frames)."""

    def __init__(self, sink: ProgressSink, plan: SegmentPlan) -> None:
        self._sink = sink
        total = plan.generated
        self._shares = [_CEILING * s.frames / total for s in plan.segments]
        self._base = 0.0
        self._share = 0.0

    def begin(self, segment: Segment) -> None:
        self._share = self._shares[segment.index]
        self._report(Stage.GENERATING, 0.0)

    def step_callback(self, steps: int) -> StepCallback:
        def on_step_end(
            _pipe: object, step: int, _timestep: object, callback_kwargs: dict[str, object]
        ) -> dict[str, object]:
            done = (step + 1) / steps
            if step + 1 >= steps:
                self._report(Stage.DECODING, _DENOISE_END)
            else:
                self._report(Stage.GENERATING, _DENOISE_END * done)
            return callback_kwargs

        return on_step_end

    def encoding(self) -> None:
        self._report(Stage.ENCODING, _DECODE_END)

    def end(self) -> None:
        self._base += self._share
        self._share = 0.0

    def _report(self, stage: Stage, fraction: float) -> None:
        self._sink(stage, round(min(_CEILING, self._base + self._share * fraction), 2))
