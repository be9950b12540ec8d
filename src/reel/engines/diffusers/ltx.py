"""LTX-Video through diffusers: ``LTXPipeline``, ``LTXImageToVideoPipeline`` and
``LTXConditionPipeline``.

One folder serves every mode: whatever pipeline class its ``model_index.json`` names
(``LTXPipeline``, ``LTXImageToVideoPipeline`` or ``LTXConditionPipeline``), the three pipelines
are built from the same loaded modules, so the other modes cost no memory. Extensions and edits
(``LTXConditionPipeline``, ``params.edit_strength``) are in :mod:`.ltx_ops`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Final

from reel.engines.base import Capabilities, EngineConfigError
from reel.engines.diffusers.base import LoadedPipelines
from reel.engines.diffusers.geometry import Geometry, ModelInfo
from reel.engines.diffusers.ltx_ops import LTXOperations, LTXPipelines
from reel.engines.diffusers.model_files import ModelIndex, check_model_dir, read_config
from reel.engines.diffusers.params import DiffusersParams, ModelDefaults

if TYPE_CHECKING:
    import torch

__all__ = ["LTXEngine"]

_CLASSES: Final = frozenset({"LTXPipeline", "LTXImageToVideoPipeline", "LTXConditionPipeline"})
_COMPONENTS: Final = ("tokenizer", "text_encoder", "vae", "transformer", "scheduler")

#: LTX-Video 2B: 768x512 at 24 fps, 121 frames (~5 s) per pass.
LTX_DEFAULTS: Final = ModelDefaults(
    size=(768, 512), fps=24, segment_frames=121, steps=40, guidance=3.0
)


class LTXEngine(LTXOperations):
    name = "ltx"
    label = "ltx engine"
    extra_keys: ClassVar[frozenset[str]] = frozenset(
        {"decode_timestep", "decode_noise_scale", "ambience", "edit_strength"}
    )

    @classmethod
    def _inspect(cls, p: DiffusersParams) -> ModelInfo:
        index = check_model_dir(p.model_dir, label=cls.label, classes=_CLASSES)
        multiple, ratio = _geometry_of(index)
        return ModelInfo(Capabilities(edit=True), LTX_DEFAULTS, multiple, ratio)

    def _load(self, dtype: torch.dtype, vae_dtype: torch.dtype) -> LoadedPipelines:
        from diffusers import (
            DiffusionPipeline,
            LTXConditionPipeline,
            LTXImageToVideoPipeline,
            LTXPipeline,
        )

        main = DiffusionPipeline.from_pretrained(
            str(self._params.model_dir),
            local_files_only=True,
            dtype={"default": dtype, "vae": vae_dtype},
        )
        # Not from_pipe(): it casts every shared module to one dtype (float32 by default).
        modules: dict[str, Any] = {name: getattr(main, name) for name in _COMPONENTS}
        t2v = main if type(main) is LTXPipeline else LTXPipeline(**modules)
        i2v = main if type(main) is LTXImageToVideoPipeline else LTXImageToVideoPipeline(**modules)
        cond = main if type(main) is LTXConditionPipeline else LTXConditionPipeline(**modules)
        return LTXPipelines(
            t2v=t2v,
            i2v=i2v,
            transformers=[main.transformer],
            vaes=[main.vae],
            others=[cond],
            cond=cond,
        )

    def _extra_call_kwargs(self, geometry: Geometry) -> dict[str, object]:
        p = self._params
        extra: dict[str, object] = {"frame_rate": geometry.fps}
        if p.decode_timestep is not None:
            extra["decode_timestep"] = p.decode_timestep
        if p.decode_noise_scale is not None:
            extra["decode_noise_scale"] = p.decode_noise_scale
        return extra


def _geometry_of(index: ModelIndex) -> tuple[int, int]:
    """(size multiple, temporal ratio), computed from the configs as diffusers does."""
    vae = read_config(index.path, "vae")
    transformer = read_config(index.path, "transformer")
    scaling = vae.get("spatio_temporal_scaling") or []
    if not isinstance(scaling, list):
        raise EngineConfigError(f"ltx engine: unexpected VAE config in {index.path}")
    factor = 2 ** sum(bool(x) for x in scaling)
    spatial = _int(vae, "spatial_compression_ratio", None, index) or (
        _int(vae, "patch_size", 4, index) * factor
    )
    temporal = _int(vae, "temporal_compression_ratio", None, index) or (
        _int(vae, "patch_size_t", 1, index) * factor
    )
    patch = _int(transformer, "patch_size", 1, index)
    return max(32, spatial * patch), temporal


def _int(config: dict[str, object], key: str, default: int | None, index: ModelIndex) -> int:
    value = config.get(key, default)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise EngineConfigError(f"ltx engine: {key} in {index.path} is not an integer")
    return value
