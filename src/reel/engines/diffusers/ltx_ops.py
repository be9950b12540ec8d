"""LTX-Video's extensions and edits, through ``LTXConditionPipeline``.

- An **extension** on LTX-Video 0.9.5 or later (its VAE's ``LTXVideo095DownBlock3D`` blocks)
  continues the source's last ``temporal_ratio + 1`` frames, rendered again by the first pass
  and dropped (:mod:`reel.engines.diffusers.conditioned`); later passes continue the one before
  on as many frames. Earlier LTX-Video checkpoints were trained to start on one image only, so
  they keep the image-to-video path from the source's last frame.
- An **edit** holds each pass to the source under it at ``1 - edit_strength``: the source's
  latents start ``edit_strength`` of the way to noise and are denoised from there on, so
  ``edit_strength`` is the noise level the source is taken to (1: a new video). The leading
  steps of the schedule above that level would change nothing and are skipped
  (``denoise_strength``); a level below the schedule's last step is raised to it. Every
  LTX-Video checkpoint edits; passes after the first continue the one before on one frame
  (0.9.0/0.9.1) or on ``temporal_ratio + 1`` frames (0.9.5+).

LTX-Video makes no sound: an edit keeps its source's soundtrack, an extension's segment is
silent (the worker cross-fades the source's sound out at the join); with ``params.ambience``
a silent source's edit and an extension's segment get an ambience track from the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from PIL import Image

from reel.config import Settings
from reel.engines.base import EngineError, EngineOutput, GenerationRequest, ProgressSink
from reel.engines.diffusers import ambience
from reel.engines.diffusers.base import DiffusersEngine, LoadedPipelines
from reel.engines.diffusers.conditioned import Chain, edit_chain, extension_chain
from reel.engines.diffusers.geometry import Geometry
from reel.engines.diffusers.model_files import read_config
from reel.engines.diffusers.progress import StepProgress
from reel.engines.diffusers.runtime import fit, output, to_frames, writing
from reel.engines.diffusers.segments import Frames, Segment
from reel.media.audio import Audio
from reel.media.video import VideoError, read_audio

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "EDIT_STRENGTH",
    "LTXOperations",
    "LTXPipelines",
    "continues_frames",
    "edit_schedule",
    "schedule",
]

#: ``edit_strength`` when ``params`` say nothing: the noise level the source is taken to.
EDIT_STRENGTH: Final = 0.6


@dataclass(slots=True)
class LTXPipelines(LoadedPipelines):
    #: Conditioning on frames of a video: extensions (0.9.5+) and edits.
    cond: Any = None


def continues_frames(model_dir: Path) -> bool:
    """Whether the model continues several frames (LTX-Video 0.9.5+, by its VAE's blocks)."""
    blocks = read_config(model_dir, "vae").get("down_block_types")
    return isinstance(blocks, list) and bool(blocks) and blocks[-1] == "LTXVideo095DownBlock3D"


class LTXOperations(DiffusersEngine):
    """The extension and edit paths of the LTX-Video engine (its base class)."""

    def __init__(self, *, params: Mapping[str, object], settings: Settings) -> None:
        super().__init__(params=params, settings=settings)
        self._keyframes = continues_frames(self._params.model_dir)

    @property
    def _overlap(self) -> int:
        """Frames each pass continues from the one before."""
        return self._info.temporal_ratio + 1 if self._keyframes else 1

    def _generate(self, req: GenerationRequest, progress: ProgressSink) -> EngineOutput:
        if req.operation == "extend" and req.source_video is not None and self._keyframes:
            chain = extension_chain(
                req, self._params, self._info, label=self.label, overlap=self._overlap
            )
            return self._run(req, chain, None, progress)
        return super()._generate(req, progress)

    def _edit(self, req: GenerationRequest, progress: ProgressSink) -> EngineOutput:
        p = self._params
        asked = EDIT_STRENGTH if p.edit_strength is None else p.edit_strength
        level, run = edit_schedule(p.steps or self._info.defaults.steps, asked)
        chain = edit_chain(
            req, p, self._info, label=self.label, overlap=self._overlap, strength=1.0 - level
        )
        try:
            sound = read_audio(req.source_video) if req.source_video else None
        except VideoError as exc:
            raise EngineError(f"{self.label}: could not read the source's sound") from exc
        return self._run(req, chain, sound, progress, run=run)

    def _run(
        self,
        req: GenerationRequest,
        chain: Chain,
        sound: Audio | None,
        progress: ProgressSink,
        *,
        run: int | None = None,
    ) -> EngineOutput:
        """Every pass of ``chain``; ``sound`` under the frames, else the ambience track if one
        is configured. ``run``: an edit's steps, the last of the schedule's."""
        p = self._params
        geometry = chain.geometry
        pipes = self._pipelines(progress)
        if not isinstance(pipes, LTXPipelines) or pipes.cond is None:  # pragma: no cover
            raise TypeError("LTX-Video pipelines expected")
        ambient = pipes.ambience if sound is None and p.ambience is not None else None
        audio = ambience.audio_format(ambient)
        if sound is not None:
            audio = {"audio_rate": sound.rate, "audio_channels": min(sound.channels, 2)}
        tracker = StepProgress(progress, geometry.plan)
        seed = req.seed if p.seed is None else p.seed
        previous: Frames | None = None
        with writing(req, geometry, label=self.label, **audio) as writer:
            if sound is not None:
                writer.write_audio(sound.samples[:2])
            for segment in geometry.plan.segments:
                tracker.begin(segment)
                conditions = chain.conditions(segment, previous)
                frames = self._pass(
                    pipes.cond, req.prompt, geometry, segment, seed, tracker, conditions, run
                )
                tracker.encoding()
                for frame in frames[chain.skip(segment) : segment.skip + segment.keep]:
                    writer.write(fit(frame, geometry.out_width, geometry.out_height))
                tracker.end()
                previous = frames[-segment.overlap :]
            if ambient is not None and p.ambience is not None:
                seconds = chain.frames / geometry.fps
                args = (ambient, p.ambience, req.prompt, seconds, seed)
                writer.write_audio(ambience.render(*args, progress=progress, label=self.label))
        meta = {"ltx": {"passes": len(geometry.plan.segments), "conditioned": True}}
        return output(req, geometry, chain.frames, meta)

    def _pass(
        self,
        pipe: Any,
        prompt: str,
        geometry: Geometry,
        segment: Segment,
        seed: int,
        tracker: StepProgress,
        conditions: list[tuple[Frames, float]],
        run: int | None,
    ) -> Frames:
        """One ``LTXConditionPipeline`` call; uint8 frames. ``run``: the steps an edit runs."""
        import torch
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        p = self._params
        steps = p.steps or self._info.defaults.steps
        kwargs: dict[str, object] = {
            "conditions": [
                LTXVideoCondition(video=[Image.fromarray(f) for f in frames], strength=strength)
                for frames, strength in conditions
            ],
            "prompt": prompt,
            "negative_prompt": p.negative_prompt or None,
            "height": geometry.gen_height,
            "width": geometry.gen_width,
            "num_frames": segment.frames,
            "num_inference_steps": steps,
            "timesteps": schedule(steps),
            "guidance_scale": self._info.defaults.guidance if p.guidance is None else p.guidance,
            "generator": torch.Generator("cpu").manual_seed(seed + segment.index),
            "output_type": "np",
            **self._extra_call_kwargs(geometry),
        }
        if p.max_sequence_length is not None:
            kwargs["max_sequence_length"] = p.max_sequence_length
        if run is not None and run < steps:  # the leading steps would leave every frame as it is
            kwargs["denoise_strength"] = (run + 0.5) / steps
        kwargs["callback_on_step_end"] = tracker.step_callback(run or steps)
        with torch.inference_mode():
            frames = to_frames(pipe(**kwargs).frames[0], label=self.label)
        if frames.shape[0] != segment.frames:
            raise EngineError(f"{self.label}: the model returned the wrong number of frames")
        return frames


def schedule(steps: int) -> list[float]:
    """``LTXConditionPipeline``'s default timesteps for ``steps`` steps, passed to it as a list
    (it makes them a tensor, which numpy 2 warns about converting)."""
    import torch
    from diffusers.pipelines.ltx.pipeline_ltx_condition import linear_quadratic_schedule

    timesteps: list[float] = (linear_quadratic_schedule(steps) * 1000).to(torch.float32).tolist()
    return timesteps


def edit_schedule(steps: int, level: float) -> tuple[float, int]:
    """``(level, steps run)`` for an edit at noise ``level`` on :func:`schedule` (the pipeline
    uses timesteps as given): frames held at a noise level are updated only once a step's
    timestep is below it, so the steps above it are skipped. A level below the schedule's last
    step is raised to it."""
    import torch

    timesteps = torch.tensor(schedule(steps), dtype=torch.float32)
    level = max(level, float(timesteps.min()) / 1000.0)
    held = torch.tensor(1.0 - level, dtype=torch.float32)  # the condition's strength
    return level, int(((timesteps / 1000.0 - 1e-6) < (1.0 - held)).sum())
