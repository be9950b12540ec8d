"""Wan 2.1 / 2.2 through diffusers: ``WanPipeline``, ``WanImageToVideoPipeline``,
``WanVideoToVideoPipeline`` (edits) and ``WanVACEPipeline`` (characters).

Four ways to configure a Wan model (see docs/models.md):

- **Wan 2.2 TI2V-5B** (``model_dir`` only): one set of weights does both modes. The
  image-to-video pipeline is built from the text-to-video one's modules, sharing them, so it
  costs no memory.
- **A text-to-video model plus an image-to-video model** (``model_dir`` + ``i2v_model_dir``,
  e.g. Wan2.1-T2V-14B with Wan2.1-I2V-14B-720P): two transformers; the text encoder is shared
  when both folders hold the same one.
- **A text-to-video model alone** (Wan2.1-T2V-1.3B): text-to-video only, so it cannot serve a
  tier (tiers need image-to-video for ``imageToVideo`` requests and for 10/15 s chaining).
- **A VACE model** (Wan2.1-VACE-1.3B/14B, ``model_dir`` only): text- and image-to-video, and
  characters' reference frames (:mod:`.wan_vace`).

A model with one text-to-video transformer (Wan 2.1 T2V, Wan 2.2 TI2V-5B) also edits videos,
through a video-to-video pipeline on the same modules (:mod:`.wan_edit`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

from reel.engines.base import (
    Capabilities,
    EngineConfigError,
    EngineOutput,
    GenerationRequest,
    ProgressSink,
)
from reel.engines.diffusers.base import DiffusersEngine, LoadedPipelines, distinct
from reel.engines.diffusers.geometry import Geometry, ModelInfo
from reel.engines.diffusers.guidance import batched_guidance
from reel.engines.diffusers.model_files import ModelIndex, check_model_dir, read_config
from reel.engines.diffusers.params import DiffusersParams, Dtype, ModelDefaults
from reel.engines.diffusers.segments import Frames
from reel.engines.diffusers.wan_edit import check_edit, edit_pipeline, edit_video, wan_modules
from reel.engines.diffusers.wan_vace import VACE, is_vace, vace_conditioning

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

__all__ = ["WanEngine", "wan_batched_guidance"]

_T2V: Final = "WanPipeline"
_I2V: Final = "WanImageToVideoPipeline"

#: Wan 2.2 TI2V-5B: 1280x704 at 24 fps, 121 frames (~5 s) per pass.
TI2V_DEFAULTS: Final = ModelDefaults(
    size=(1280, 704), fps=24, segment_frames=121, steps=50, guidance=5.0
)
#: Wan 2.1 and Wan 2.2 A14B: 832x480 at 16 fps, 81 frames (~5 s) per pass.
WAN_DEFAULTS: Final = ModelDefaults(
    size=(832, 480), fps=16, segment_frames=81, steps=50, guidance=5.0
)


def _is_ti2v(index: ModelIndex) -> bool:
    return index.class_name == _T2V and index.options.get("expand_timesteps") is True


def _edits(index: ModelIndex) -> bool:
    """One text-to-video transformer (Wan 2.1 T2V, Wan 2.2 TI2V-5B): the video-to-video
    pipeline drives it. Wan 2.2 A14B's two experts it cannot."""
    return index.class_name == _T2V and not index.has("transformer_2")


class WanEngine(DiffusersEngine):
    name = "wan"
    label = "wan engine"
    extra_keys: ClassVar[frozenset[str]] = frozenset(
        {"i2v_model_dir", "guidance_2", "flow_shift", "batch_guidance", "ambience", "edit_strength"}
    )
    #: The Wan VAE is meant to run in float32 (diffusers' Wan docs).
    vae_dtype_default: ClassVar[Dtype | None] = "float32"

    @classmethod
    def _inspect(cls, p: DiffusersParams) -> ModelInfo:
        main = check_model_dir(p.model_dir, label=cls.label, classes={_T2V, _I2V, VACE})
        vace = main.class_name == VACE
        extra = None
        if p.i2v_model_dir is not None:
            if vace:
                raise EngineConfigError(
                    f"{cls.label}: {p.model_dir} is a VACE model, which does image-to-video "
                    "itself; remove i2v_model_dir"
                )
            if main.class_name == _I2V:
                raise EngineConfigError(
                    f"{cls.label}: model_dir is already an image-to-video model; put the "
                    "text-to-video model in model_dir and this one in i2v_model_dir"
                )
            extra = check_model_dir(p.i2v_model_dir, label=cls.label, classes={_I2V, _T2V})
            if extra.class_name == _T2V and not _is_ti2v(extra):
                raise EngineConfigError(
                    f"{cls.label}: i2v_model_dir {p.i2v_model_dir} holds a text-to-video model"
                )
        if p.guidance_2 is not None:
            for index in (main, extra):
                if index is not None and index.options.get("boundary_ratio") is None:
                    raise EngineConfigError(
                        f"{cls.label}: params.guidance_2 is for two-expert models (Wan 2.2 "
                        f"A14B); {index.path} has a single transformer"
                    )
        if p.batch_guidance and vace:
            raise EngineConfigError(
                f"{cls.label}: params.batch_guidance does not apply to VACE models (their "
                "control inputs are not batched with the prompts)"
            )
        if p.batch_guidance and p.first_block_cache > 0:
            raise EngineConfigError(
                f"{cls.label}: params.batch_guidance cannot be combined with "
                "params.first_block_cache (the cache keeps each guidance pass apart)"
            )
        caps = Capabilities(
            text_to_video=main.class_name in (_T2V, VACE),
            image_to_video=main.class_name in (_I2V, VACE) or _is_ti2v(main) or extra is not None,
            edit=_edits(main),
            references=vace,
        )
        multiple, ratio = _geometry_of(main)
        if extra is not None:
            extra_multiple, extra_ratio = _geometry_of(extra)
            if extra_ratio != ratio:
                raise EngineConfigError(
                    f"{cls.label}: model_dir and i2v_model_dir use different VAEs "
                    f"(temporal ratios {ratio} and {extra_ratio})"
                )
            multiple = max(multiple, extra_multiple)
        defaults = TI2V_DEFAULTS if _is_ti2v(main) else WAN_DEFAULTS
        info = ModelInfo(caps, defaults, multiple, ratio)
        check_edit(p, info, label=cls.label)
        return info

    def _load(self, dtype: torch.dtype, vae_dtype: torch.dtype) -> LoadedPipelines:
        from diffusers import DiffusionPipeline, WanImageToVideoPipeline

        p = self._params
        dtypes = {"default": dtype, "vae": vae_dtype}
        main = DiffusionPipeline.from_pretrained(
            str(p.model_dir), local_files_only=True, dtype=dtypes
        )
        self._set_flow_shift(main)
        i2v: Any = None
        others: list[Any] = []
        if isinstance(main, WanImageToVideoPipeline):
            t2v, i2v = None, main
        elif is_vace(main):
            t2v = i2v = main  # image-to-video is a VACE task of the same pipeline
        elif p.i2v_model_dir is not None:
            t2v = main
            shared = {}
            if _same_text_encoder(p.model_dir, p.i2v_model_dir):
                shared = {"text_encoder": main.text_encoder, "tokenizer": main.tokenizer}
            i2v = WanImageToVideoPipeline.from_pretrained(
                str(p.i2v_model_dir), local_files_only=True, dtype=dtypes, **shared
            )
            self._set_flow_shift(i2v)
        else:
            t2v = main
            if main.config.expand_timesteps:
                i2v = WanImageToVideoPipeline(
                    **wan_modules(main),
                    transformer_2=main.transformer_2,
                    image_encoder=None,
                    image_processor=None,
                    boundary_ratio=main.config.boundary_ratio,
                    expand_timesteps=True,
                )
        if t2v is not None and not is_vace(t2v) and getattr(t2v, "transformer_2", None) is None:
            others.append(edit_pipeline(t2v))
        pipes = [x for x in (t2v, i2v) if x is not None]
        return LoadedPipelines(
            t2v=t2v,
            i2v=i2v,
            others=others,
            transformers=distinct(
                *(
                    getattr(x, name, None)
                    for x in pipes
                    for name in ("transformer", "transformer_2")
                )
            ),
            vaes=distinct(*(x.vae for x in pipes)),
        )

    def _set_flow_shift(self, pipe: Any) -> None:
        shift = self._params.flow_shift
        if shift is not None:
            pipe.scheduler = type(pipe.scheduler).from_config(
                pipe.scheduler.config, flow_shift=shift
            )

    def _extra_call_kwargs(self, geometry: Geometry) -> dict[str, object]:  # noqa: ARG002
        g2 = self._params.guidance_2
        return {} if g2 is None else {"guidance_scale_2": g2}

    def _edit(self, req: GenerationRequest, progress: ProgressSink) -> EngineOutput:
        if not self._info.capabilities.edit:
            return super()._edit(req, progress)  # refused before anything loads
        return edit_video(
            req,
            progress,
            p=self._params,
            info=self._info,
            label=self.label,
            load=lambda: self._pipelines(progress),
            guidance=self._guidance,
        )

    def _conditioning(
        self,
        pipes: LoadedPipelines,
        condition: Frames | None,
        references: tuple[Path, ...],
        kwargs: dict[str, object],
    ) -> DiffusionPipeline | None:
        if not is_vace(pipes.t2v):
            return super()._conditioning(pipes, condition, references, kwargs)
        vace_conditioning(kwargs, condition, references, self.label)
        return pipes.t2v

    def _guidance(self, pipe: Any, kwargs: dict[str, object]) -> AbstractContextManager[None]:
        if not self._params.batch_guidance:
            return nullcontext()
        return wan_batched_guidance(pipe, kwargs)


@contextmanager
def wan_batched_guidance(pipe: Any, kwargs: dict[str, object]) -> Iterator[None]:
    """Run a Wan pipeline call given by ``kwargs`` with one transformer call per step.

    The prompts are encoded here, as the pipeline would, and passed as embeddings in the
    transformer's dtype, so :func:`batched_guidance` can pair the two guidance passes.
    """
    guidance = kwargs.get("guidance_scale", 5.0)
    guidance_2 = kwargs.get("guidance_scale_2")
    scales = [g for g in (guidance, guidance_2) if isinstance(g, int | float)]
    if not any(g > 1.0 for g in scales) or kwargs.get("prompt_embeds") is not None:
        yield  # no guidance pass to pair (or embeddings the caller made)
        return
    cond, uncond = pipe.encode_prompt(
        prompt=kwargs.pop("prompt"),
        negative_prompt=kwargs.pop("negative_prompt", None),
        do_classifier_free_guidance=True,
        num_videos_per_prompt=1,
        max_sequence_length=kwargs.get("max_sequence_length", 512),
        device=pipe._execution_device,
    )
    dtype = pipe.transformer.dtype
    cond, uncond = cond.to(dtype), uncond.to(dtype)
    kwargs["prompt_embeds"], kwargs["negative_prompt_embeds"] = cond, uncond
    transformers = distinct(pipe.transformer, getattr(pipe, "transformer_2", None))
    with batched_guidance(transformers, cond=cond, uncond=uncond):
        yield


def _geometry_of(index: ModelIndex) -> tuple[int, int]:
    """(size multiple, temporal ratio) from the VAE and transformer configs."""
    vae = read_config(index.path, "vae")
    transformer = read_config(index.path, "transformer")
    spatial = vae.get("scale_factor_spatial") or 8
    temporal = vae.get("scale_factor_temporal") or 4
    patch = transformer.get("patch_size") or [1, 2, 2]
    if not isinstance(spatial, int) or not isinstance(temporal, int) or not isinstance(patch, list):
        raise EngineConfigError(f"wan engine: unexpected VAE/transformer config in {index.path}")
    return max(16, spatial * int(max(patch[1:]))), temporal


def _same_text_encoder(a: Path, b: Path) -> bool:
    """Whether two Wan folders hold the same text encoder (then it is loaded once)."""
    try:
        ours, theirs = read_config(a, "text_encoder"), read_config(b, "text_encoder")
    except EngineConfigError:
        return False
    ignore = {"_name_or_path", "transformers_version", "dtype", "torch_dtype"}
    return {k: v for k, v in ours.items() if k not in ignore} == {
        k: v for k, v in theirs.items() if k not in ignore
    }
