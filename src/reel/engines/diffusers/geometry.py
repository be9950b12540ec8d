"""How a request (tier size and duration) maps onto what a model makes: sizes, fps, passes."""

from __future__ import annotations

from dataclasses import dataclass

from reel.engines.base import Capabilities, EngineConfigError
from reel.engines.diffusers.params import DiffusersParams, ModelDefaults
from reel.engines.diffusers.segments import SegmentPlan, plan_segments, valid_frame_count


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the startup check learns from a model's folders, before loading any weights."""

    capabilities: Capabilities
    defaults: ModelDefaults
    #: Generation width and height must be multiples of this (VAE × patch).
    size_multiple: int
    #: Frame counts must be ``temporal_ratio * k + 1``.
    temporal_ratio: int


@dataclass(frozen=True, slots=True)
class Geometry:
    """How one request is made: generation size, output size, frame rate and passes."""

    gen_width: int
    gen_height: int
    out_width: int
    out_height: int
    fps: int
    plan: SegmentPlan


def segment_frames(p: DiffusersParams, info: ModelInfo, *, label: str) -> int:
    frames = p.segment_frames or info.defaults.segment_frames
    r = info.temporal_ratio
    if frames != valid_frame_count(frames, r) or frames <= r:
        raise EngineConfigError(
            f"{label}: params.segment_frames must be {r}k+1 for this model "
            f"(e.g. {valid_frame_count(frames, r)}), got {frames}"
        )
    return frames


def _to_multiple(value: int, multiple: int) -> int:
    return max(multiple, value // multiple * multiple)


def plan_geometry(
    *,
    width: int,
    height: int,
    duration_s: float,
    p: DiffusersParams,
    info: ModelInfo,
    label: str,
    overlap: int = 1,
) -> Geometry:
    """Map a request (the tier's advertised size and a duration) onto what the model makes.

    ``overlap``: frames each later pass repeats from the one before (its conditioning frames).
    """
    if width <= 0 or height <= 0 or duration_s <= 0:
        raise EngineConfigError(f"{label}: invalid request {width}x{height}, {duration_s}s")
    long_side, short_side = p.size or info.defaults.size
    long_side, short_side = max(long_side, short_side), min(long_side, short_side)
    portrait = height > width
    gen_w, gen_h = (short_side, long_side) if portrait else (long_side, short_side)
    gen_w = _to_multiple(gen_w, info.size_multiple)
    gen_h = _to_multiple(gen_h, info.size_multiple)
    out_w, out_h = (width - width % 2, height - height % 2) if p.scale_to_tier else (gen_w, gen_h)
    fps = p.fps or info.defaults.fps
    total = max(1, round(duration_s * fps))
    plan = plan_segments(
        total,
        max_frames=segment_frames(p, info, label=label),
        temporal_ratio=info.temporal_ratio,
        overlap=overlap,
    )
    return Geometry(gen_w, gen_h, max(2, out_w), max(2, out_h), fps, plan)
