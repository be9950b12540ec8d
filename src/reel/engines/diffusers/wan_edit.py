"""Edits on Wan: ``WanVideoToVideoPipeline`` over the source video, keeping its length and size.

The edit is frame for frame: the output has the source's frames, frame rate and size (the
request's, which is the source's, whatever ``scale_to_tier`` says). Each source frame is
cover-fitted to the model's generation size; each pass noises the source's latents to
``edit_strength`` of the schedule and denoises them towards the new prompt (0.7 by default: the
layout and motion stay, the look follows the prompt). A source longer than one pass is edited
in windows cross-faded at their seams (:mod:`.windows`). The output keeps the source's sound,
or, for a silent source, gets the model's ambience track when one is configured.

The video-to-video pipeline is built on the loaded text-to-video pipeline's modules, so an edit
costs no memory beyond its activations. It serves models with one text-to-video transformer:
Wan 2.1 T2V and Wan 2.2 TI2V-5B. Wan 2.2 A14B (two experts) does not edit: diffusers'
video-to-video pipeline drives a single transformer. Image-to-video and VACE folders have no
text-to-video transformer of this kind, so they do not edit either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from reel.engines.base import (
    EngineConfigError,
    EngineError,
    EngineOutput,
    GenerationRequest,
    ProgressSink,
)
from reel.engines.diffusers import ambience
from reel.engines.diffusers.geometry import Geometry, ModelInfo, plan_geometry, segment_frames
from reel.engines.diffusers.params import DiffusersParams
from reel.engines.diffusers.progress import StepProgress
from reel.engines.diffusers.runtime import LoadedPipelines, fit, output, to_frames, writing
from reel.engines.diffusers.segments import Frames, Segment
from reel.engines.diffusers.windows import edit_windows
from reel.media.video import (
    Audio,
    RGBFrame,
    VideoError,
    VideoInfo,
    probe,
    read_audio,
    sample_frames,
)

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

__all__ = ["EDIT_STRENGTH", "check_edit", "edit_pipeline", "edit_video", "wan_modules"]

#: ``params.edit_strength`` when unset: how much of the schedule an edit runs.
EDIT_STRENGTH: Final = 0.7

#: Wraps one pipeline call (batched guidance); may rewrite its keyword arguments.
Guidance = Callable[[Any, dict[str, object]], AbstractContextManager[None]]


def edit_steps(steps: int, strength: float) -> int:
    """Denoising steps an edit runs: the last ``strength`` of ``steps``, counted as diffusers
    counts them."""
    return min(int(steps * strength), steps)


def check_edit(p: DiffusersParams, info: ModelInfo, *, label: str) -> None:
    """At worker start: ``edit_strength`` only where the model edits, and at least one step."""
    if p.edit_strength is None:
        return
    if not info.capabilities.edit:
        raise EngineConfigError(
            f"{label}: params.edit_strength is set but {p.model_dir} cannot edit videos "
            "(edits need a single-transformer text-to-video model: Wan 2.1 T2V, Wan 2.2 TI2V)"
        )
    steps = p.steps or info.defaults.steps
    if edit_steps(steps, p.edit_strength) < 1:
        raise EngineConfigError(
            f"{label}: params.edit_strength {p.edit_strength} of {steps} steps is no "
            "denoising step; raise edit_strength or steps"
        )


def wan_modules(t2v: Any) -> dict[str, Any]:
    """The modules of the loaded ``WanPipeline`` ``t2v`` that another Wan pipeline is built on.

    Pipelines are built on them directly rather than with ``from_pipe()``: it casts every
    shared module to one dtype (float32 by default), undoing the bfloat16 transformer /
    float32 VAE split.
    """
    names = ("tokenizer", "text_encoder", "transformer", "vae", "scheduler")
    return {name: getattr(t2v, name) for name in names}


def edit_pipeline(t2v: Any) -> DiffusionPipeline:
    """A ``WanVideoToVideoPipeline`` on the modules of the loaded ``WanPipeline`` ``t2v``."""
    from diffusers import WanVideoToVideoPipeline
    from diffusers.video_processor import VideoProcessor

    v2v = WanVideoToVideoPipeline(**wan_modules(t2v))
    # diffusers 0.42 derives the VAE's scale factors from its downsampling layers, which is
    # right for the Wan 2.1 VAE only; the Wan 2.2 VAE (patchified, x16) states them in its
    # config, as WanPipeline reads them. Without this, TI2V-5B edits fail on a shape mismatch.
    v2v.vae_scale_factor_spatial = t2v.vae_scale_factor_spatial
    v2v.vae_scale_factor_temporal = t2v.vae_scale_factor_temporal
    v2v.video_processor = VideoProcessor(vae_scale_factor=v2v.vae_scale_factor_spatial)
    return v2v


def find_edit_pipeline(pipes: LoadedPipelines) -> DiffusionPipeline | None:
    from diffusers import WanVideoToVideoPipeline

    return next((x for x in pipes.others if isinstance(x, WanVideoToVideoPipeline)), None)


def edit_overlap(p: DiffusersParams, info: ModelInfo, *, label: str) -> int:
    """Frames each later window repeats (and cross-fades): a latent frame's worth, at most
    half a window, so a middle window always has frames of its own."""
    frames = segment_frames(p, info, label=label)
    return max(1, min(info.temporal_ratio, (frames - 1) // 2))


def edit_video(
    req: GenerationRequest,
    progress: ProgressSink,
    *,
    p: DiffusersParams,
    info: ModelInfo,
    label: str,
    load: Callable[[], LoadedPipelines],
    guidance: Guidance,
) -> EngineOutput:
    """One edit of ``req.source_video`` (see the module's docstring)."""
    if req.source_video is None:
        raise EngineError(f"{label}: an edit needs a source video")
    source = _probe(req, label)
    fps = max(1, round(source.fps))
    geometry = plan_geometry(
        width=req.width,
        height=req.height,
        duration_s=source.frames / fps,
        p=replace(p, fps=fps, scale_to_tier=True),
        info=info,
        label=label,
        overlap=edit_overlap(p, info, label=label),
    )
    pipes = load()
    pipe = find_edit_pipeline(pipes)
    if pipe is None:
        raise EngineError(f"{label}: this model cannot edit videos")
    steps = p.steps or info.defaults.steps
    strength = p.edit_strength or EDIT_STRENGTH
    seed = req.seed if p.seed is None else p.seed
    tracker = StepProgress(progress, geometry.plan)

    def edit(segment: Segment, window: Frames) -> Frames:
        import torch
        from PIL import Image

        tracker.begin(segment)
        kwargs: dict[str, object] = {
            "video": [Image.fromarray(frame) for frame in window],
            "prompt": req.prompt,
            "negative_prompt": p.negative_prompt or None,
            "height": geometry.gen_height,
            "width": geometry.gen_width,
            "num_inference_steps": steps,
            "strength": strength,
            "guidance_scale": info.defaults.guidance if p.guidance is None else p.guidance,
            # The same noise for every window: their seams cross-fade between similar edits.
            "generator": torch.Generator("cpu").manual_seed(seed),
            "output_type": "np",
            "callback_on_step_end": tracker.step_callback(edit_steps(steps, strength)),
        }
        if p.max_sequence_length is not None:
            kwargs["max_sequence_length"] = p.max_sequence_length
        with torch.inference_mode(), guidance(pipe, kwargs):
            video = pipe(**kwargs).frames[0]
        tracker.encoding()
        return to_frames(video, label=label)

    sound = _sound(req, label)
    fmt = (
        {"audio_rate": sound.rate, "audio_channels": min(sound.channels, 2)}
        if sound is not None
        else ambience.audio_format(pipes.ambience)
    )
    with writing(req, geometry, label=label, **fmt) as w:
        if sound is not None:
            w.write_audio(sound.samples[:2])

        def emit(frames: Frames) -> None:
            for frame in frames:
                w.write(fit(frame, geometry.out_width, geometry.out_height))
            tracker.end()

        edit_windows(geometry.plan, _frames(req, geometry, label), edit, emit)
        if sound is None and pipes.ambience is not None and p.ambience is not None:
            seconds = geometry.plan.total / geometry.fps
            args = (pipes.ambience, p.ambience, req.prompt, seconds, seed)
            w.write_audio(ambience.render(*args, progress=progress, label=label))
    meta = {"edit_strength": strength, "edit_windows": len(geometry.plan.segments)}
    return output(req, geometry, geometry.plan.total, meta)


def _probe(req: GenerationRequest, label: str) -> VideoInfo:
    assert req.source_video is not None
    try:
        return probe(req.source_video)
    except VideoError as exc:
        raise EngineError(f"{label}: could not read the source video") from exc


def _sound(req: GenerationRequest, label: str) -> Audio | None:
    assert req.source_video is not None
    try:
        return read_audio(req.source_video)
    except VideoError as exc:
        raise EngineError(f"{label}: could not read the source video's sound") from exc


def _frames(req: GenerationRequest, geometry: Geometry, label: str) -> Iterator[RGBFrame]:
    """The source's frames, each cover-fitted to the generation size."""
    assert req.source_video is not None
    try:
        for frame in sample_frames(req.source_video, range(geometry.plan.total)):
            yield fit(frame, geometry.gen_width, geometry.gen_height)
    except VideoError as exc:
        raise EngineError(f"{label}: could not read the source video") from exc
