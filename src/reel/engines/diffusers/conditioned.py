"""Extensions and edits as chains of passes conditioned on frames of the source video.

- An **extension** continues its source. Its first pass is conditioned on the source's last
  frames (:func:`source_tail`, sampled at the generation's frame rate, one latent frame's worth
  or more) and starts *on* them, so the pass is asked for those frames as well and they are
  dropped from the segment: the worker joins source and segment with no frame shown twice.
- An **edit** passes over the whole source at the source's frame count, frame rate and size.
  A source longer than one pass is edited in consecutive windows (:class:`SourceWindows`), each
  later window also starting on the last frames of the window before, as a chained generation
  does, so the edit has no seam.

:class:`Chain` says what every pass of a request is conditioned on; the engines' pass loops
(LTX-2 in :mod:`.ltx2`, LTX-Video in :mod:`.ltx_ops`) run it. Frames are decoded with
:mod:`reel.media.video` and cover-fitted to the generation size; a source that cannot be read
is an :class:`EngineError` before any model work.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from reel.engines.base import EngineError, GenerationRequest
from reel.engines.diffusers.geometry import Geometry, ModelInfo, plan_geometry, segment_frames
from reel.engines.diffusers.params import DiffusersParams
from reel.engines.diffusers.runtime import fit
from reel.engines.diffusers.segments import Frames, Segment, SegmentPlan, plan_segments
from reel.media.video import RGBFrame, VideoError, probe, sample_frames

__all__ = [
    "Chain",
    "SourceInfo",
    "SourceWindows",
    "edit_chain",
    "extension_chain",
    "halved",
    "probe_source",
    "source_tail",
    "window_start",
]


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What an extension or an edit needs to know of its source before reading frames."""

    path: Path
    frames: int
    fps: float
    width: int
    height: int


def probe_source(path: Path | None, *, label: str) -> SourceInfo:
    if path is None:
        raise EngineError(f"{label}: this operation needs its source video")
    try:
        info = probe(path)
    except VideoError as exc:
        raise EngineError(f"{label}: could not read the source video") from exc
    return SourceInfo(path, info.frames, info.fps, info.width, info.height)


def _read(source: SourceInfo, picks: Sequence[int], width: int, height: int) -> Iterator[RGBFrame]:
    try:
        for frame in sample_frames(source.path, picks):
            yield fit(frame, width, height)
    except VideoError as exc:
        raise EngineError("Could not read the source video") from exc


def source_tail(source: SourceInfo, count: int, *, fps: int, width: int, height: int) -> Frames:
    """The source's last ``count`` frames at ``fps`` (nearest in time; a short source repeats
    its first frame), cover-fitted to ``width x height``."""
    step = source.fps / fps
    last = source.frames - 1
    picks = [max(0, round(last - (count - 1 - j) * step)) for j in range(count)]
    return np.stack(list(_read(source, picks, width, height)))


class SourceWindows:
    """The source's frames under each pass of an edit, cover-fitted, decoded once, in order:
    each window starts at or after the one before (windows overlap by a few frames)."""

    def __init__(self, source: SourceInfo, width: int, height: int) -> None:
        self._frames = _read(source, range(source.frames), width, height)
        self._held: list[RGBFrame] = []
        self._first = 0  # the source index of self._held[0]

    def window(self, start: int, count: int) -> Frames:
        """Frames ``start .. start + count - 1``; past the source's end its last frame repeats."""
        if start < self._first:
            raise ValueError(f"windows must come in order: {start} is before {self._first}")
        drop = min(start - self._first, len(self._held))
        del self._held[:drop]
        self._first += drop
        while self._first + len(self._held) < start + count:
            frame = next(self._frames, None)
            if frame is None:
                break
            if self._first + len(self._held) < start:
                self._first += 1  # before the window: skipped
                continue
            self._held.append(frame)
        if not self._held:
            raise EngineError("The source video has no frames in this window")
        frames = self._held[:count]
        frames += [frames[-1]] * (count - len(frames))
        return np.stack(frames)


def window_start(plan: SegmentPlan, segment: Segment) -> int:
    """Where ``segment``'s rendered frames start on the output's timeline."""
    return sum(s.keep for s in plan.segments[: segment.index]) - segment.skip


@dataclass(frozen=True, slots=True)
class Chain:
    """What each pass of one request is conditioned on; every condition sits at the pass's
    first frame (latent index 0)."""

    geometry: Geometry
    #: Image-to-video: the first pass starts on this frame.
    start: Frames | None = None
    #: An extension: the source's last frames. The first pass continues them and starts on
    #: them; they are not written.
    lead: Frames | None = None
    #: An edit: the source under each pass, conditioned at ``strength``.
    source: SourceWindows | None = None
    #: How strongly an edit holds to its source (``1 - edit_strength``).
    strength: float = 1.0

    @property
    def frames(self) -> int:
        """Frames of the finished video."""
        return self.geometry.plan.total - self.dropped

    @property
    def dropped(self) -> int:
        return 0 if self.lead is None else len(self.lead)

    def skip(self, segment: Segment) -> int:
        """Leading frames of ``segment``'s pass that are not written."""
        return self.dropped if segment.index == 0 else segment.skip

    def conditions(self, segment: Segment, previous: Frames | None) -> list[tuple[Frames, float]]:
        """``(frames, strength)`` pairs for ``segment``'s pass, in order (a later one overrides
        an earlier one where both cover a frame): the source window of an edit, then what
        the pass continues: the pass before's last frames, or an extension's lead."""
        found: list[tuple[Frames, float]] = []
        if self.source is not None:
            start = window_start(self.geometry.plan, segment)
            found.append((self.source.window(start, segment.frames), self.strength))
        if previous is not None:
            found.append((previous, 1.0))
        elif segment.index == 0 and self.lead is not None:
            found.append((self.lead, 1.0))
        return found


def halved(geometry: Geometry) -> Geometry:
    """``geometry`` rendered at half the size (a latent upsampler doubles it)."""
    return replace(geometry, gen_width=geometry.gen_width // 2, gen_height=geometry.gen_height // 2)


def extension_chain(
    req: GenerationRequest,
    p: DiffusersParams,
    info: ModelInfo,
    *,
    label: str,
    overlap: int,
    half: bool = False,
) -> Chain:
    """An extension's segment of ``req.duration_s``, its first pass continuing the source's
    last ``overlap`` frames (which the pass renders again, and which are then dropped)."""
    source = probe_source(req.source_video, label=label)
    geometry = plan_geometry(
        width=req.width,
        height=req.height,
        duration_s=req.duration_s,
        p=p,
        info=info,
        label=label,
        overlap=overlap,
    )
    plan = plan_segments(
        geometry.plan.total + overlap,
        max_frames=segment_frames(p, info, label=label),
        temporal_ratio=info.temporal_ratio,
        overlap=overlap,
    )
    geometry = replace(geometry, plan=plan)
    if half:
        geometry = halved(geometry)
    lead = source_tail(
        source, overlap, fps=geometry.fps, width=geometry.gen_width, height=geometry.gen_height
    )
    return Chain(geometry, lead=lead)


def edit_chain(
    req: GenerationRequest,
    p: DiffusersParams,
    info: ModelInfo,
    *,
    label: str,
    overlap: int,
    strength: float,
    half: bool = False,
) -> Chain:
    """An edit of ``req.source_video``: as many frames, at its frame rate and size, in passes
    of at most ``segment_frames``, each conditioned on the source under it at ``strength``."""
    source = probe_source(req.source_video, label=label)
    fps = max(1, round(source.fps))
    geometry = plan_geometry(
        width=source.width, height=source.height, duration_s=1.0, p=p, info=info, label=label
    )
    plan = plan_segments(
        source.frames,
        max_frames=segment_frames(p, info, label=label),
        temporal_ratio=info.temporal_ratio,
        overlap=overlap,
    )
    width, height = source.width - source.width % 2, source.height - source.height % 2
    geometry = replace(
        geometry, out_width=max(2, width), out_height=max(2, height), fps=fps, plan=plan
    )
    if half:
        geometry = halved(geometry)
    windows = SourceWindows(source, geometry.gen_width, geometry.gen_height)
    return Chain(geometry, source=windows, strength=strength)
