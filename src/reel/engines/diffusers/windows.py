"""An edit of a source longer than one pass: consecutive windows, their seams cross-faded.

A video-to-video pass takes as many frames as a generation pass. A longer source is edited in
the windows of a :class:`~reel.engines.diffusers.segments.SegmentPlan` planned with an
``overlap``: every later window starts ``overlap`` source frames before the previous one ended,
and across those frames the output fades from the previous window's edit to the new one's, so
no seam shows as a jump. The output has exactly the plan's frames, one per source frame.

Pure numpy: no torch, so the windowing is tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from reel.engines.diffusers.segments import EmitFrames, Frames, Segment, SegmentPlan
from reel.media.video import RGBFrame

__all__ = ["EditWindow", "edit_windows"]

#: Edits one window: ``(segment, its source frames) -> edited frames`` (as many).
EditWindow = Callable[[Segment, Frames], Frames]


def edit_windows(
    plan: SegmentPlan, source: Iterator[RGBFrame], edit: EditWindow, emit: EmitFrames
) -> None:
    """Edit ``source`` (exactly ``plan.total`` frames) window by window and emit the output.

    A window whose valid frame count runs past the source's end is padded with its last
    frame; those frames are dropped from the output. Frames that a later window will fade
    into are held back until it is edited, so at most one window is held in memory.
    """
    overlap = plan.segments[0].overlap
    recent: list[RGBFrame] = []  # the last ``overlap`` source frames taken
    held: list[RGBFrame] = []  # output frames not emitted yet
    last = plan.segments[-1].index
    for segment in plan.segments:
        fresh = [_next(source, segment) for _ in range(segment.keep)]
        window = (recent[-segment.skip :] if segment.skip else []) + fresh
        window += [window[-1]] * (segment.frames - len(window))
        recent = (recent + fresh)[-overlap:]
        edited = edit(segment, np.stack(window))
        if edited.ndim != 4 or edited.shape[0] != segment.frames:
            raise ValueError(
                f"window {segment.index} edited {edited.shape[0] if edited.ndim else 0} "
                f"frames, expected {segment.frames}"
            )
        out = list(edited[: segment.skip + segment.keep])
        if segment.skip:
            if len(held) < segment.skip:  # plan_segments never makes such a plan
                raise ValueError(f"window {segment.index} overlaps frames already emitted")
            faded = _fade(held[-segment.skip :], out[: segment.skip])
            held = held[: -segment.skip] + faded
            out = out[segment.skip :]
        held += out
        keep_back = 0 if segment.index == last else overlap
        ready = len(held) - keep_back
        if ready > 0:
            emit(np.stack(held[:ready]))
            held = held[ready:]


def _next(source: Iterator[RGBFrame], segment: Segment) -> RGBFrame:
    try:
        return next(source)
    except StopIteration:
        raise ValueError(f"the source ran out of frames in window {segment.index}") from None


def _fade(before: list[RGBFrame], after: list[RGBFrame]) -> list[RGBFrame]:
    """A linear cross-fade over the overlap: mostly ``before`` first, mostly ``after`` last."""
    n = len(before)
    faded: list[RGBFrame] = []
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        w = (i + 1) / (n + 1)
        mix = a.astype(np.float32) * (1.0 - w) + b.astype(np.float32) * w
        faded.append(np.clip(np.rint(mix), 0, 255).astype(np.uint8))
    return faded
