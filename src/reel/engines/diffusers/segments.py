"""Long videos from short passes: plan segments and join them without a duplicated frame.

Open video models make about five seconds per pass. A longer video is a chain of passes: the
first is text- or image-to-video, every later one is image-to-video conditioned on the last
frame of the one before. An image-to-video pass starts *on* its conditioning image, so the
first frame of every later segment repeats a frame already shown; :func:`chain_segments` drops
it. Only the final segment is trimmed when the valid frame counts overshoot the duration.

Pure Python and numpy: no torch, so the join logic is tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Segment", "SegmentPlan", "chain_segments", "plan_segments", "valid_frame_count"]

#: ``frames x height x width x 3`` uint8 RGB.
Frames = npt.NDArray[np.uint8]


def valid_frame_count(n: int, temporal_ratio: int) -> int:
    """The smallest ``temporal_ratio * k + 1 >= n`` (what a causal video VAE accepts)."""
    if temporal_ratio < 1:
        raise ValueError(f"temporal_ratio must be >= 1, got {temporal_ratio}")
    if n <= 1:
        return 1
    return temporal_ratio * math.ceil((n - 1) / temporal_ratio) + 1


@dataclass(frozen=True, slots=True)
class Segment:
    index: int
    #: Frames the model is asked for in this pass (a valid count).
    frames: int
    #: Frames of this pass that reach the output.
    keep: int
    #: Leading frames of a later pass that repeat the end of the one before (its condition).
    overlap: int = 1

    @property
    def skip(self) -> int:
        """Leading frames dropped: the repeated conditioning frames of every later segment."""
        return 0 if self.index == 0 else self.overlap


@dataclass(frozen=True, slots=True)
class SegmentPlan:
    segments: tuple[Segment, ...]

    @property
    def total(self) -> int:
        return sum(s.keep for s in self.segments)

    @property
    def generated(self) -> int:
        return sum(s.frames for s in self.segments)


def plan_segments(
    total: int, *, max_frames: int, temporal_ratio: int, overlap: int = 1
) -> SegmentPlan:
    """Split ``total`` output frames into as few passes of at most ``max_frames`` as possible.

    Every pass after the first starts on the last ``overlap`` frames of the one before.

    Passes are balanced (a 10 s video becomes two similar halves, not one full pass and a
    stub), each asks for a valid frame count, and at most ``temporal_ratio - 1`` frames are
    generated and thrown away per pass.
    """
    if total < 1:
        raise ValueError(f"total must be >= 1, got {total}")
    if max_frames != valid_frame_count(max_frames, temporal_ratio) or max_frames < 2:
        raise ValueError(
            f"max_frames must be {temporal_ratio}k+1 and at least {temporal_ratio + 1}, "
            f"got {max_frames}"
        )
    if not 1 <= overlap < max(2, max_frames - 1):
        raise ValueError(f"overlap must be from 1 to {max(1, max_frames - 2)}, got {overlap}")
    # The first pass yields max_frames new frames, every later one max_frames - overlap.
    count = 1 + max(0, math.ceil((total - max_frames) / (max_frames - overlap)))
    segments: list[Segment] = []
    remaining = total
    for index in range(count):
        if not remaining:
            break
        skip = 0 if index == 0 else overlap
        wanted = math.ceil(remaining / (count - index))
        frames = min(max_frames, valid_frame_count(wanted + skip, temporal_ratio))
        keep = min(frames - skip, remaining)
        segments.append(Segment(index=index, frames=frames, keep=keep, overlap=overlap))
        remaining -= keep
    if remaining:  # unreachable by construction; guards the arithmetic above
        raise AssertionError(f"segment plan for {total} frames is {remaining} short")
    return SegmentPlan(tuple(segments))


#: Renders one pass: ``(segment, start image or None) -> frames``.
RenderSegment = Callable[[Segment, Frames | None], Frames]
#: Receives the output frames of one segment, in order.
EmitFrames = Callable[[Frames], None]


def chain_segments(
    plan: SegmentPlan,
    render: RenderSegment,
    emit: EmitFrames,
    *,
    start_image: Frames | None = None,
) -> Frames:
    """Render every segment and emit the frames the output keeps; returns the last frame.

    Segment 0 gets ``start_image`` (``None`` for text-to-video); segment ``i > 0`` gets the
    last frame segment ``i - 1`` rendered. The frames actually rendered must number exactly
    what the segment asked for.
    """
    condition = start_image
    last: Frames | None = None
    for segment in plan.segments:
        frames = render(segment, condition)
        if frames.ndim != 4 or frames.shape[0] != segment.frames:
            raise ValueError(
                f"segment {segment.index} rendered {frames.shape[0] if frames.ndim else 0} "
                f"frames, expected {segment.frames}"
            )
        kept = frames[segment.skip : segment.skip + segment.keep]
        emit(kept)
        condition = frames[-1]
        last = kept[-1]
    if last is None:
        raise ValueError("empty segment plan")
    return last
