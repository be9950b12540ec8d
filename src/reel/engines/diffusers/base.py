"""What the diffusers engines share: load once, one job at a time, progress, chaining, encoding.

A subclass says how to inspect and load its model family (:meth:`DiffusersEngine._inspect`,
:meth:`DiffusersEngine._load`) and which extra keyword arguments its pipelines take. This
class does the rest: it loads the pipelines on the first task (``loading``), renders the
request as a chain of segments (``generating``/``decoding`` driven by the denoising step
callback across *all* segments), scales each frame to the tier's size and encodes it
(``encoding``). torch and diffusers are imported only when a pipeline is loaded.

Failure modes, each turned into an :class:`EngineError` so the task fails (and is refunded)
while the worker process keeps serving: out of memory (CUDA or host), non-finite output, any
exception raised inside the pipeline. :class:`Interrupted` from the progress sink is raised
from the step callback, which stops the pipeline before the next step and skips its decode.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

from PIL import Image

from reel.config import Settings
from reel.engines.base import (
    Capabilities,
    EngineConfigError,
    EngineError,
    EngineOutput,
    GenerationRequest,
    Interrupted,
    ProgressSink,
)
from reel.engines.diffusers import ambience
from reel.engines.diffusers.geometry import Geometry, ModelInfo, plan_geometry, segment_frames
from reel.engines.diffusers.params import DiffusersParams, Dtype, parse_params, require_packages
from reel.engines.diffusers.progress import StepProgress
from reel.engines.diffusers.runtime import (
    LoadedPipelines,
    Slot,
    device_of,
    distinct,
    dtype_of,
    fastest_attention,
    fit,
    free_memory,
    output,
    slot_for,
    start_frame,
    to_frames,
    writing,
)
from reel.engines.diffusers.segments import Frames, Segment, chain_segments
from reel.types import Stage

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

__all__ = ["DiffusersEngine", "LoadedPipelines", "distinct", "start_frame"]

log = logging.getLogger("reel.engines")

#: Packages a diffusers engine cannot start without.
_PACKAGES: Final = ("torch", "diffusers", "transformers", "accelerate")


class DiffusersEngine:
    """Base of the Wan and LTX-Video engines; not registered itself."""

    name: ClassVar[str] = "diffusers"
    #: Used in every error message, e.g. ``"wan engine"``.
    label: ClassVar[str] = "diffusers engine"
    #: ``params`` keys this engine accepts beyond the common ones.
    extra_keys: ClassVar[frozenset[str]] = frozenset()
    #: Default VAE dtype (``None``: the same as the model's dtype).
    vae_dtype_default: ClassVar[Dtype | None] = None

    def __init__(self, *, params: Mapping[str, object], settings: Settings) -> None:
        self._params, self._info = self._configure(params, settings)
        self._slot = slot_for(self._slot_key())

    # --- startup check ---------------------------------------------------------------------
    @classmethod
    def check(cls, *, params: Mapping[str, object], settings: Settings) -> Capabilities:
        """Validate ``params`` and the model folders without loading weights. An image-to-video
        model extends (the worker joins a segment started on the source's last frame)."""
        caps = cls._configure(params, settings)[1].capabilities
        return replace(caps, extend=caps.extend or caps.image_to_video)

    @classmethod
    def _configure(
        cls, params: Mapping[str, object], settings: Settings
    ) -> tuple[DiffusersParams, ModelInfo]:
        require_packages(cls.label, _PACKAGES)
        p = parse_params(params, label=cls.label, extra_keys=cls.extra_keys, settings=settings)
        info = cls._inspect(p)
        ambience.check(p.ambience, label=cls.label)
        segment_frames(p, info, label=cls.label)
        return p, info

    # --- subclass hooks --------------------------------------------------------------------
    @classmethod
    def _inspect(cls, p: DiffusersParams) -> ModelInfo:
        """Read the model folders (missing files are an error) and describe the model."""
        raise NotImplementedError

    def _load(self, dtype: torch.dtype, vae_dtype: torch.dtype) -> LoadedPipelines:
        """Load the pipelines from disk (``local_files_only``), on the CPU."""
        raise NotImplementedError

    def _extra_call_kwargs(self, geometry: Geometry) -> dict[str, object]:  # noqa: ARG002
        """Keyword arguments this engine's pipelines take beyond the common ones."""
        return {}

    def _conditioning(
        self,
        pipes: LoadedPipelines,
        condition: Frames | None,
        references: tuple[Path, ...],  # noqa: ARG002
        kwargs: dict[str, object],
    ) -> DiffusionPipeline | None:
        """The pipeline of one pass, its conditioning added to ``kwargs``: text-to-video, or
        image-to-video from ``condition``. A family whose model conditions on characters'
        ``references`` (``Capabilities.references``) overrides this."""
        if condition is None:
            return pipes.t2v
        kwargs["image"] = Image.fromarray(condition)
        return pipes.i2v

    def _edit(self, req: GenerationRequest, progress: ProgressSink) -> EngineOutput:  # noqa: ARG002
        """An edit: one pass over ``req.source_video`` keeping its length and size. A family
        whose model edits overrides this and says so (``Capabilities.edit``) in ``_inspect``."""
        raise EngineError(f"{self.label}: this model cannot edit videos")

    def _guidance(
        self,
        pipe: DiffusionPipeline,  # noqa: ARG002
        kwargs: dict[str, object],  # noqa: ARG002
    ) -> AbstractContextManager[None]:
        """Around one pipeline call: batched guidance, which may rewrite ``kwargs``."""
        return nullcontext()

    # --- Engine ----------------------------------------------------------------------------
    def generate(self, req: GenerationRequest, progress: ProgressSink) -> EngineOutput:
        with self._slot.lock:  # one job at a time per loaded pipeline
            try:
                if req.operation == "edit":
                    return self._edit(req, progress)
                return self._generate(req, progress)
            except (Interrupted, EngineError):
                raise
            except Exception as exc:
                raise self._translate(exc) from exc

    def close(self) -> None:
        """Let go of the pipelines; they are freed once no other model shares them."""
        slot, self._slot = self._slot, Slot()
        with slot.lock:  # let a running job finish first
            pass
        del slot
        free_memory()

    # --- internals -------------------------------------------------------------------------
    def _slot_key(self) -> tuple[object, ...]:
        """Models whose loaded pipelines would be identical share them (and their lock)."""
        p = self._params
        return (
            type(self),
            p.model_dir.resolve(),
            p.i2v_model_dir.resolve() if p.i2v_model_dir else None,
            p.dtype,
            p.vae_dtype,
            p.device,
            p.offload,
            p.vae_tiling,
            p.vae_slicing,
            p.compile,
            p.attention_backend,
            p.first_block_cache,
            p.flow_shift,
            p.ambience,
        )

    def _generate(self, req: GenerationRequest, progress: ProgressSink) -> EngineOutput:
        p = self._params
        geometry = plan_geometry(
            width=req.width,
            height=req.height,
            duration_s=req.duration_s,
            p=p,
            info=self._info,
            label=self.label,
        )
        start = start_frame(req, geometry)
        tracker = StepProgress(progress, geometry.plan)
        job = _Job(
            pipes=self._pipelines(progress),
            prompt=req.prompt,
            geometry=geometry,
            seed=req.seed if p.seed is None else p.seed,
            steps=p.steps or self._info.defaults.steps,
            tracker=tracker,
            references=req.reference_images,
        )

        def render(segment: Segment, condition: Frames | None) -> Frames:
            tracker.begin(segment)
            return self._render(job, segment, condition)

        audio = ambience.audio_format(job.pipes.ambience)
        with writing(req, geometry, label=self.label, **audio) as writer:

            def emit(frames: Frames) -> None:
                tracker.encoding()
                for frame in frames:
                    writer.write(fit(frame, geometry.out_width, geometry.out_height))
                tracker.end()

            chain_segments(geometry.plan, render, emit, start_image=start)
            if job.pipes.ambience is not None and p.ambience is not None:
                seconds = geometry.plan.total / geometry.fps
                args = (job.pipes.ambience, p.ambience, req.prompt, seconds, job.seed)
                writer.write_audio(ambience.render(*args, progress=progress, label=self.label))
        return output(req, geometry, geometry.plan.total)

    def _render(self, job: _Job, segment: Segment, condition: Frames | None) -> Frames:
        """One pass: text-to-video, or image-to-video from ``condition``; uint8 frames."""
        import torch

        p = self._params
        kwargs: dict[str, object] = {
            "prompt": job.prompt,
            "negative_prompt": p.negative_prompt or None,
            "height": job.geometry.gen_height,
            "width": job.geometry.gen_width,
            "num_frames": segment.frames,
            "num_inference_steps": job.steps,
            "guidance_scale": self._info.defaults.guidance if p.guidance is None else p.guidance,
            "generator": torch.Generator("cpu").manual_seed(job.seed + segment.index),
            "output_type": "np",
            "callback_on_step_end": job.tracker.step_callback(job.steps),
            **self._extra_call_kwargs(job.geometry),
        }
        if p.max_sequence_length is not None:
            kwargs["max_sequence_length"] = p.max_sequence_length
        pipe = self._conditioning(job.pipes, condition, job.references, kwargs)
        if pipe is None:
            mode = "text" if condition is None else "image"
            raise EngineError(f"{self.label}: this model cannot do {mode}-to-video")
        with torch.inference_mode(), self._guidance(pipe, kwargs):
            video = pipe(**kwargs).frames[0]
        return to_frames(video, label=self.label)

    def _pipelines(self, progress: ProgressSink) -> LoadedPipelines:
        if self._slot.pipes is not None:
            return self._slot.pipes
        progress(Stage.LOADING, 0.0)
        p = self._params
        device = device_of(p.device)
        if p.offload != "none" and device.type != "cuda":
            raise EngineConfigError(f"{self.label}: params.offload needs a CUDA device")
        dtype = dtype_of(p.dtype, device)
        vae_dtype = dtype_of(p.vae_dtype or self.vae_dtype_default or p.dtype, device)
        log.info("%s: loading %s (%s, %s)", self.label, p.model_dir, dtype, device)
        try:
            pipes = self._load(dtype, vae_dtype)
            pipes.ambience = ambience.load(p.ambience, dtype, label=self.label)
        except (OSError, ValueError) as exc:
            raise EngineConfigError(f"{self.label}: could not load {p.model_dir}: {exc}") from exc
        for pipe in distinct(pipes.t2v, pipes.i2v, *pipes.others, pipes.ambience):
            pipe.set_progress_bar_config(disable=True)
            if p.offload == "model":
                pipe.enable_model_cpu_offload(device=device)
            elif p.offload == "sequential":
                pipe.enable_sequential_cpu_offload(device=device)
            else:
                pipe.to(device)
        self._tune(pipes)
        self._slot.pipes = pipes
        return pipes

    def _tune(self, pipes: LoadedPipelines) -> None:
        """Apply the speed and memory settings from ``params``."""
        p = self._params
        for vae in pipes.vaes:
            if p.vae_tiling:
                vae.enable_tiling()
            if p.vae_slicing:
                vae.enable_slicing()
        backend = fastest_attention() if p.attention_backend == "auto" else p.attention_backend
        for transformer in pipes.transformers:
            if backend:
                try:
                    transformer.set_attention_backend(backend)
                except (ValueError, RuntimeError, ImportError) as exc:
                    raise EngineConfigError(
                        f"{self.label}: attention backend {backend!r} is not usable here: {exc}"
                    ) from exc
            if p.first_block_cache > 0:
                from diffusers import FirstBlockCacheConfig

                transformer.enable_cache(FirstBlockCacheConfig(threshold=p.first_block_cache))
            if p.compile:
                transformer.compile_repeated_blocks(fullgraph=True)

    def _translate(self, exc: Exception) -> EngineError:
        """A foreign failure in the pipeline → :class:`EngineError`; free memory for the next."""
        import torch

        if isinstance(exc, torch.OutOfMemoryError | MemoryError):
            log.warning("%s: out of memory: %s", self.label, exc)
            # The traceback's frames hold the failed step's tensors: drop them, then free.
            exc.__traceback__ = None
            free_memory()
            return EngineError(
                f"{self.label}: out of memory; use a smaller size, params.offload or "
                "params.vae_tiling"
            )
        log.exception("%s: generation failed", self.label)
        return EngineError(f"{self.label}: video generation failed")


# --- one request -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Job:
    pipes: LoadedPipelines
    prompt: str
    geometry: Geometry
    seed: int
    steps: int
    tracker: StepProgress
    #: Characters' reference frames (PNG), for a model that conditions on them.
    references: tuple[Path, ...] = ()
