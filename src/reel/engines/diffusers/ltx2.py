"""LTX-2 through diffusers: video and its synchronized sound in one pass.

``LTX2Pipeline`` (text-to-video) and ``LTX2ImageToVideoPipeline`` return the frames and the
vocoder's waveform of the same clip; both are built from the modules of one folder. A pass
covers up to 20 s (``segment_frames`` 481 at 24 fps), so the 10 s and 15 s of every tier are
rendered in **one pass** and the sound never has a seam. Where a duration exceeds one pass
(a smaller ``segment_frames``), later passes use ``LTX2ConditionPipeline`` conditioned on the
previous pass's last frames (one latent frame: ``temporal_ratio + 1`` frames, then dropped
from the output) and the sound is cross-faded over those frames
(:mod:`reel.engines.diffusers.soundtrack`).

An **extension** runs its first pass on ``LTX2ConditionPipeline`` too, conditioned on the
source's last ``temporal_ratio + 1`` frames, which are dropped with their sound; the worker
cross-fades the source's sound into the segment's (the pipeline takes no sound to continue: its
``audio_latents`` are noised whole, with no per-sample conditioning). An **edit** conditions
every pass on the source under it at ``1 - edit_strength`` and makes new sound for the edited
clip (:mod:`reel.engines.diffusers.conditioned`).

Settings beyond the common ones: ``audio_guidance``, ``stg_scale``, ``audio_stg_scale``,
``modality_scale``, ``distilled`` (the distilled checkpoint's 8-sigma schedule without
guidance passes) and ``upsampler_dir`` (a ``LTX2LatentUpsamplerModel`` folder: render at half
the size, then upsample x2, for the 1080p tier) and ``edit_strength``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

import numpy as np
from PIL import Image

from reel.engines.base import (
    Capabilities,
    EngineConfigError,
    EngineError,
    EngineOutput,
    GenerationRequest,
    ProgressSink,
)
from reel.engines.diffusers.base import DiffusersEngine, LoadedPipelines
from reel.engines.diffusers.conditioned import Chain, edit_chain, extension_chain, halved
from reel.engines.diffusers.geometry import Geometry, ModelInfo, plan_geometry
from reel.engines.diffusers.model_files import check_model_dir, read_config
from reel.engines.diffusers.params import DiffusersParams, ModelDefaults
from reel.engines.diffusers.progress import StepProgress
from reel.engines.diffusers.runtime import fit, output, start_frame, writing
from reel.engines.diffusers.segments import Frames, Segment
from reel.engines.diffusers.soundtrack import SoundChain
from reel.media.audio import Samples

if TYPE_CHECKING:
    import torch

__all__ = ["EDIT_STRENGTH", "LTX2_DEFAULTS", "LTX2Engine", "LTX2Pipelines", "ltx2_pipelines"]

_CLASSES: Final = frozenset({"LTX2Pipeline", "LTX2ImageToVideoPipeline", "LTX2ConditionPipeline"})
_COMPONENTS: Final = (
    "scheduler",
    "vae",
    "audio_vae",
    "text_encoder",
    "tokenizer",
    "connectors",
    "transformer",
    "vocoder",
)
_OPTIONAL: Final = ("processor", "prompt_enhancer", "duration_head")

#: LTX-2: 1280x704 (the 32-pixel grid nearest 720p) at 24 fps, up to 20 s (481 frames) a pass.
LTX2_DEFAULTS: Final = ModelDefaults(
    size=(1280, 704), fps=24, segment_frames=481, steps=40, guidance=4.0
)
#: ``edit_strength`` when ``params`` say nothing: the source is conditioned at 1 - this.
EDIT_STRENGTH: Final = 0.6
#: What the pipelines use when ``params`` say nothing (diffusers' defaults for LTX-2).
_AUDIO_GUIDANCE: Final = 7.0
#: Guidance that costs no extra transformer pass: the distilled schedule's setting.
_NO_GUIDANCE: Final[dict[str, object]] = {
    "guidance_scale": 1.0,
    "stg_scale": 0.0,
    "modality_scale": 1.0,
    "audio_guidance_scale": 1.0,
    "audio_stg_scale": 0.0,
    "audio_modality_scale": 1.0,
}


@dataclass(slots=True)
class LTX2Pipelines(LoadedPipelines):
    #: Continuation from the previous pass's last frames.
    cond: Any = None
    #: Latent upsampler (x2), when ``upsampler_dir`` is set.
    upsample: Any = None


@dataclass(frozen=True, slots=True)
class _Pass:
    frames: Frames
    """At generation size: the next pass's condition."""
    out: Frames
    """What reaches the video (upsampled when configured)."""
    audio: Samples


class LTX2Engine(DiffusersEngine):
    name = "ltx2"
    label = "ltx2 engine"
    extra_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "decode_timestep",
            "decode_noise_scale",
            "audio_guidance",
            "stg_scale",
            "audio_stg_scale",
            "modality_scale",
            "distilled",
            "upsampler_dir",
            "edit_strength",
        }
    )

    @classmethod
    def _inspect(cls, p: DiffusersParams) -> ModelInfo:
        index = check_model_dir(p.model_dir, label=cls.label, classes=_CLASSES)
        vae = read_config(index.path, "vae")
        transformer = read_config(index.path, "transformer")
        scaling = vae.get("spatio_temporal_scaling") or [True] * 4
        factor = 2 ** sum(bool(x) for x in scaling) if isinstance(scaling, list) else 16
        spatial = _int(vae, "spatial_compression_ratio") or _int(vae, "patch_size", 4) * factor
        temporal = _int(vae, "temporal_compression_ratio") or _int(vae, "patch_size_t", 1) * factor
        multiple = max(32, spatial * _int(transformer, "patch_size", 1))
        if p.upsampler_dir is not None:
            _check_upsampler(p)
            multiple *= 2  # the half-size pass must sit on the grid too
        return ModelInfo(Capabilities(edit=True), LTX2_DEFAULTS, multiple, temporal)

    def _slot_key(self) -> tuple[object, ...]:
        p = self._params
        return (*super()._slot_key(), p.upsampler_dir.resolve() if p.upsampler_dir else None)

    def _load(self, dtype: torch.dtype, vae_dtype: torch.dtype) -> LoadedPipelines:
        from diffusers import DiffusionPipeline
        from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

        p = self._params
        main = DiffusionPipeline.from_pretrained(
            str(p.model_dir), local_files_only=True, dtype={"default": dtype, "vae": vae_dtype}
        )
        upsampler = None
        if p.upsampler_dir is not None:
            upsampler = LTX2LatentUpsamplerModel.from_pretrained(
                str(p.upsampler_dir), local_files_only=True, torch_dtype=vae_dtype
            )
        return ltx2_pipelines(main, upsampler)

    # --- one request -------------------------------------------------------------------------
    def _generate(self, req: GenerationRequest, progress: ProgressSink) -> EngineOutput:
        p = self._params
        overlap = self._info.temporal_ratio + 1
        half = p.upsampler_dir is not None  # the first pass at half size, upsampled x2
        if req.operation == "extend" and req.source_video is not None:
            chain = extension_chain(
                req, p, self._info, label=self.label, overlap=overlap, half=half
            )
            return self._run(req, chain, progress)
        geometry = plan_geometry(
            width=req.width,
            height=req.height,
            duration_s=req.duration_s,
            p=p,
            info=self._info,
            label=self.label,
            overlap=overlap,
        )
        if half:
            geometry = halved(geometry)
        return self._run(req, Chain(geometry, start=start_frame(req, geometry)), progress)

    def _edit(self, req: GenerationRequest, progress: ProgressSink) -> EngineOutput:
        """The source conditioned at ``1 - edit_strength`` under every pass, with new sound."""
        p = self._params
        strength = 1.0 - (EDIT_STRENGTH if p.edit_strength is None else p.edit_strength)
        chain = edit_chain(
            req,
            p,
            self._info,
            label=self.label,
            overlap=self._info.temporal_ratio + 1,
            strength=strength,
            half=p.upsampler_dir is not None,
        )
        return self._run(req, chain, progress)

    def _run(self, req: GenerationRequest, chain: Chain, progress: ProgressSink) -> EngineOutput:
        """Every pass of ``chain`` in order; frames and sound written as they are final."""
        p = self._params
        geometry = chain.geometry
        pipes = self._pipelines(progress)
        if not isinstance(pipes, LTX2Pipelines):  # pragma: no cover - _load builds them
            raise TypeError("LTX-2 pipelines expected")
        tracker = StepProgress(progress, geometry.plan)
        vocoder: Any = pipes.cond.vocoder
        rate = int(vocoder.config.output_sampling_rate)
        channels = int(getattr(vocoder.config, "out_channels", 2))
        channels = channels if channels in (1, 2) else 2
        sound = SoundChain(rate=rate, fps=geometry.fps)
        unheard = round(chain.dropped * rate / geometry.fps)  # the lead's sound: not written
        seed = req.seed if p.seed is None else p.seed
        previous: Frames | None = None
        with writing(
            req, geometry, label=self.label, audio_rate=rate, audio_channels=channels
        ) as writer:
            for segment in geometry.plan.segments:
                tracker.begin(segment)
                start = chain.start if segment.index == 0 else None
                conditions = chain.conditions(segment, previous)
                done = self._pass(
                    pipes, req.prompt, geometry, segment, seed, tracker, start, conditions
                )
                tracker.encoding()
                audio = sound.add(done.audio, segment)
                cut = min(unheard, audio.shape[1])
                unheard -= cut
                if audio.shape[1] > cut:
                    writer.write_audio(_channels(audio[:, cut:], channels))
                for frame in done.out[chain.skip(segment) : segment.skip + segment.keep]:
                    writer.write(fit(frame, geometry.out_width, geometry.out_height))
                tracker.end()
                previous = done.frames[-segment.overlap :]
            tail = sound.finish()
            if tail is not None:
                writer.write_audio(_channels(tail[:, unheard:], channels))
        meta = {"ltx2": {"passes": len(geometry.plan.segments), "audio_rate": rate}}
        return output(req, geometry, chain.frames, meta)

    def _pass(
        self,
        pipes: LTX2Pipelines,
        prompt: str,
        geometry: Geometry,
        segment: Segment,
        seed: int,
        tracker: StepProgress,
        start: Frames | None,
        conditions: list[tuple[Frames, float]],
    ) -> _Pass:
        """One pipeline call: frames and sound of ``segment``."""
        import torch

        p = self._params
        steps = p.steps or self._info.defaults.steps
        kwargs: dict[str, object] = {
            "prompt": prompt,
            "negative_prompt": p.negative_prompt or None,
            "height": geometry.gen_height,
            "width": geometry.gen_width,
            "num_frames": segment.frames,
            "frame_rate": float(geometry.fps),
            "generator": torch.Generator("cpu").manual_seed(seed + segment.index),
            "output_type": "np",
            **self._guidance_kwargs(),
        }
        if p.distilled:
            from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES

            kwargs["sigmas"] = list(DISTILLED_SIGMA_VALUES)
            steps = len(DISTILLED_SIGMA_VALUES)
        kwargs["num_inference_steps"] = steps
        kwargs["callback_on_step_end"] = tracker.step_callback(steps)
        for key in ("max_sequence_length", "decode_timestep", "decode_noise_scale"):
            if getattr(p, key) is not None:
                kwargs[key] = getattr(p, key)
        pipe = pipes.t2v
        if conditions:
            from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

            pipe = pipes.cond
            kwargs["conditions"] = [
                LTX2VideoCondition(frames=frames, index=0, strength=strength)
                for frames, strength in conditions
            ]
        elif start is not None:
            pipe = pipes.i2v
            kwargs["image"] = Image.fromarray(start)
        if pipe is None:
            raise EngineConfigError(f"{self.label}: this model has no pipeline for this request")
        with torch.inference_mode():
            result = pipe(**kwargs)
            frames = _checked(np.asarray(result.frames[0], dtype=np.float32), self.label)
            audio = _checked(result.audio[0].float().cpu().numpy(), self.label)
            out = frames
            if pipes.upsample is not None:
                up = pipes.upsample(
                    video=[Image.fromarray(f) for f in frames],
                    height=geometry.gen_height,
                    width=geometry.gen_width,
                    num_frames=segment.frames,
                    output_type="np",
                    generator=torch.Generator("cpu").manual_seed(seed + segment.index),
                )
                out = _checked(np.asarray(up.frames[0], dtype=np.float32), self.label)
        if frames.shape[0] != segment.frames or out.shape[0] != segment.frames:
            raise EngineError(f"{self.label}: the model returned the wrong number of frames")
        if audio.ndim == 1:
            audio = audio[None, :]
        return _Pass(frames=frames, out=out, audio=np.clip(audio, -1.0, 1.0).astype(np.float32))

    def _guidance_kwargs(self) -> dict[str, object]:
        p = self._params
        if p.distilled:
            return dict(_NO_GUIDANCE)
        kwargs: dict[str, object] = {
            "guidance_scale": self._info.defaults.guidance if p.guidance is None else p.guidance,
            "audio_guidance_scale": _AUDIO_GUIDANCE
            if p.audio_guidance is None
            else p.audio_guidance,
        }
        if p.stg_scale is not None:
            kwargs["stg_scale"] = p.stg_scale
        if p.audio_stg_scale is not None:
            kwargs["audio_stg_scale"] = p.audio_stg_scale
        if p.modality_scale is not None:
            kwargs["modality_scale"] = kwargs["audio_modality_scale"] = p.modality_scale
        return kwargs


def ltx2_pipelines(main: Any, upsampler: Any = None) -> LTX2Pipelines:
    """Every pipeline the engine drives, built on the modules of one loaded LTX-2 pipeline."""
    from diffusers import (
        LTX2ConditionPipeline,
        LTX2ImageToVideoPipeline,
        LTX2LatentUpsamplePipeline,
        LTX2Pipeline,
    )

    # Not from_pipe(): it casts every shared module to one dtype.
    modules: dict[str, Any] = {name: getattr(main, name) for name in _COMPONENTS}
    modules.update({name: getattr(main, name, None) for name in _OPTIONAL})
    t2v = main if type(main) is LTX2Pipeline else LTX2Pipeline(**modules)
    i2v = LTX2ImageToVideoPipeline(**modules)
    cond = main if type(main) is LTX2ConditionPipeline else LTX2ConditionPipeline(**modules)
    upsample = None
    if upsampler is not None:
        upsample = LTX2LatentUpsamplePipeline(vae=main.vae, latent_upsampler=upsampler)
    return LTX2Pipelines(
        t2v=t2v,
        i2v=i2v,
        transformers=[main.transformer],
        vaes=[main.vae, main.audio_vae],
        others=[pipe for pipe in (cond, upsample) if pipe is not None],
        cond=cond,
        upsample=upsample,
    )


def _checked(values: np.ndarray, label: str) -> Any:
    """``values`` as uint8 frames (4-D, 0..1 floats) or float32 audio; NaN is an error."""
    if not np.isfinite(values).all():
        raise EngineError(
            f"{label}: the model produced invalid output (NaN values); try another dtype or seed"
        )
    if values.ndim == 4:
        return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)
    return values.astype(np.float32)


def _channels(samples: Samples, channels: int) -> Samples:
    """``samples`` as ``channels`` channels (mono is duplicated, extra channels are mixed)."""
    if samples.shape[0] == channels:
        return samples
    mono = samples.mean(axis=0, keepdims=True)
    return np.repeat(mono, channels, axis=0) if channels > 1 else mono


def _check_upsampler(p: DiffusersParams) -> None:
    folder = p.upsampler_dir
    assert folder is not None
    weights = list(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not (folder / "config.json").is_file() or not weights:
        raise EngineConfigError(
            f"ltx2 engine: params.upsampler_dir {folder} is not a latent upsampler folder "
            "(config.json and *.safetensors; e.g. LTX-2's latent_upsampler/)"
        )


def _int(config: dict[str, object], key: str, default: int = 0) -> int:
    value = config.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise EngineConfigError(f"ltx2 engine: {key} in the model's config is not an integer")
    return value
