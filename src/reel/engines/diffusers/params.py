"""The diffusers engines' ``params`` from the models file; no torch needed.

Parsed at worker start, before any weights load, so a wrong models file is reported at once.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeVar, cast

from reel.config import Settings
from reel.engines.base import EngineConfigError

Dtype = Literal["bfloat16", "float16", "float32"]
Offload = Literal["none", "model", "sequential"]
_DTYPES: Final = ("bfloat16", "float16", "float32")
_OFFLOADS: Final = ("none", "model", "sequential")

#: Keys every diffusers engine accepts; each engine adds its own.
COMMON_KEYS: Final = frozenset(
    {
        "model_dir",
        "size",
        "fps",
        "segment_frames",
        "steps",
        "guidance",
        "negative_prompt",
        "max_sequence_length",
        "seed",
        "scale_to_tier",
        "dtype",
        "vae_dtype",
        "device",
        "offload",
        "vae_tiling",
        "vae_slicing",
        "compile",
        "attention_backend",
        "first_block_cache",
    }
)


@dataclass(frozen=True, slots=True)
class ModelDefaults:
    """What a model family makes natively, used where ``params`` say nothing."""

    #: Landscape (width, height); portrait swaps them.
    size: tuple[int, int]
    fps: int
    segment_frames: int
    steps: int
    guidance: float


@dataclass(frozen=True, slots=True)
class DiffusersParams:
    model_dir: Path
    size: tuple[int, int] | None = None
    fps: int | None = None
    segment_frames: int | None = None
    steps: int | None = None
    guidance: float | None = None
    negative_prompt: str = ""
    max_sequence_length: int | None = None
    #: A fixed seed for every task; ``None`` uses each task's own (random, recorded) seed.
    seed: int | None = None
    scale_to_tier: bool = True
    #: ``None``: bfloat16 on CUDA, float32 on CPU.
    dtype: Dtype | None = None
    vae_dtype: Dtype | None = None
    device: str = "auto"
    offload: Offload = "none"
    vae_tiling: bool = False
    vae_slicing: bool = False
    compile: bool = False
    attention_backend: str | None = None
    #: First-block-cache threshold; 0 turns the cache off.
    first_block_cache: float = 0.0
    # --- Wan only -----------------------------------------------------------------------
    i2v_model_dir: Path | None = None
    guidance_2: float | None = None
    flow_shift: float | None = None
    #: Both guidance passes in one transformer call per step (more memory, same output).
    batch_guidance: bool = False
    #: How far an edit departs from its source (0 < x <= 1); ``None``: the engine's default.
    edit_strength: float | None = None
    # --- LTX-Video only -----------------------------------------------------------------
    decode_timestep: float | None = None
    decode_noise_scale: float | None = None
    # --- LTX-2 only ---------------------------------------------------------------------
    audio_guidance: float | None = None
    stg_scale: float | None = None
    audio_stg_scale: float | None = None
    modality_scale: float | None = None
    #: The distilled checkpoint's schedule: 8 fixed sigmas, no guidance passes.
    distilled: bool = False
    #: A latent upsampler folder: render at half size, then upsample x2 (the 1080p tier).
    upsampler_dir: Path | None = None
    # --- silent models (Wan, LTX-Video) ---------------------------------------------------
    #: A text-to-audio model that adds an ambience track from the prompt; ``None``: silent.
    ambience: AmbienceParams | None = None


#: Keys of ``params.ambience``.
AMBIENCE_KEYS: Final = frozenset({"model_dir", "steps", "guidance", "negative_prompt", "seed"})


@dataclass(frozen=True, slots=True)
class AmbienceParams:
    """``params.ambience``: a Stable Audio folder run on the prompt after the video."""

    model_dir: Path
    steps: int = 100
    guidance: float = 7.0
    negative_prompt: str = ""
    #: A fixed seed; ``None`` uses the task's own seed.
    seed: int | None = None


_T = TypeVar("_T")


class _Reader:
    """Typed reads from a ``params`` table, with errors that name the engine and the key."""

    def __init__(
        self, params: Mapping[str, object], label: str, settings: Settings, prefix: str = ""
    ) -> None:
        self._params = params
        self._label = label
        self._settings = settings
        self._prefix = prefix

    def fail(self, key: str, why: str) -> EngineConfigError:
        return EngineConfigError(f"{self._label}: params.{self._prefix}{key} {why}")

    def _get(self, key: str, kind: type[_T] | tuple[type, ...], what: str) -> _T | None:
        value = self._params.get(key)
        if value is None:
            return None
        if isinstance(value, bool) and kind is not bool:
            raise self.fail(key, f"must be {what}")
        if not isinstance(value, kind):
            raise self.fail(key, f"must be {what}")
        return cast(_T, value)

    def path(self, key: str) -> Path | None:
        value = self._get(key, str, "a directory path")
        if value is None:
            return None
        path = Path(value).expanduser()
        models_file = self._settings.models_file
        if not path.is_absolute() and models_file is not None:
            path = models_file.parent / path  # relative to the models file
        return path

    def integer(self, key: str, lo: int, hi: int) -> int | None:
        value = self._get(key, int, f"an integer from {lo} to {hi}")
        if value is not None and not lo <= value <= hi:
            raise self.fail(key, f"must be an integer from {lo} to {hi}")
        return value

    def number(self, key: str, lo: float, hi: float) -> float | None:
        value = self._get(key, (int, float), f"a number from {lo} to {hi}")
        if value is not None and not lo <= value <= hi:
            raise self.fail(key, f"must be a number from {lo} to {hi}")
        return None if value is None else float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, bool, "true or false")
        return default if value is None else value

    def text(self, key: str) -> str | None:
        return self._get(key, str, "a string")

    def choice(self, key: str, options: Collection[str]) -> str | None:
        value = self.text(key)
        if value is not None and value not in options:
            raise self.fail(key, f"must be one of {', '.join(options)}")
        return value

    def size(self, key: str) -> tuple[int, int] | None:
        value = self._params.get(key)
        if value is None:
            return None
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not all(16 <= v <= 8192 for v in value)
        ):
            raise self.fail(key, "must be [width, height] in pixels (landscape), e.g. [1280, 704]")
        width, height = value
        return int(width), int(height)


def parse_params(
    params: Mapping[str, object], *, label: str, extra_keys: Iterable[str], settings: Settings
) -> DiffusersParams:
    """Check ``params`` for one engine; unknown keys are an error, not silently ignored."""
    allowed = COMMON_KEYS | frozenset(extra_keys)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise EngineConfigError(
            f"{label}: unknown params {unknown}; allowed: {', '.join(sorted(allowed))}"
        )
    r = _Reader(params, label, settings)
    model_dir = r.path("model_dir")
    if model_dir is None:
        raise r.fail("model_dir", "is required: the diffusers model directory")
    backend = r.text("attention_backend")
    if backend is not None and backend.endswith("_hub"):
        raise r.fail(
            "attention_backend",
            f"{backend!r} downloads kernels at run time; install the kernel package "
            f"and use {backend.removesuffix('_hub')!r}",
        )
    seed = params.get("seed")
    if seed is not None and seed != "request":
        seed = r.integer("seed", 0, 2**32 - 1)
    return DiffusersParams(
        model_dir=model_dir,
        size=r.size("size"),
        fps=r.integer("fps", 1, 120),
        segment_frames=r.integer("segment_frames", 2, 1025),
        steps=r.integer("steps", 1, 200),
        guidance=r.number("guidance", 0.0, 30.0),
        negative_prompt=r.text("negative_prompt") or "",
        max_sequence_length=r.integer("max_sequence_length", 8, 1024),
        seed=seed if isinstance(seed, int) else None,
        scale_to_tier=r.flag("scale_to_tier", True),
        dtype=cast(Dtype | None, r.choice("dtype", _DTYPES)),
        vae_dtype=cast(Dtype | None, r.choice("vae_dtype", _DTYPES)),
        device=r.text("device") or "auto",
        offload=cast(Offload, r.choice("offload", _OFFLOADS) or "none"),
        vae_tiling=r.flag("vae_tiling", False),
        vae_slicing=r.flag("vae_slicing", False),
        compile=r.flag("compile", False),
        attention_backend=backend,
        first_block_cache=r.number("first_block_cache", 0.0, 1.0) or 0.0,
        i2v_model_dir=r.path("i2v_model_dir"),
        guidance_2=r.number("guidance_2", 0.0, 30.0),
        flow_shift=r.number("flow_shift", 0.0, 100.0),
        batch_guidance=r.flag("batch_guidance", False),
        edit_strength=_edit_strength(r),
        decode_timestep=r.number("decode_timestep", 0.0, 1.0),
        decode_noise_scale=r.number("decode_noise_scale", 0.0, 1.0),
        audio_guidance=r.number("audio_guidance", 0.0, 30.0),
        stg_scale=r.number("stg_scale", 0.0, 10.0),
        audio_stg_scale=r.number("audio_stg_scale", 0.0, 10.0),
        modality_scale=r.number("modality_scale", 0.0, 30.0),
        distilled=r.flag("distilled", False),
        upsampler_dir=r.path("upsampler_dir"),
        ambience=_ambience(params.get("ambience"), label, settings),
    )


def _edit_strength(r: _Reader) -> float | None:
    """``params.edit_strength``: 0 would keep the source unchanged, so it is refused."""
    why = "must be a number above 0 and at most 1, e.g. 0.7"
    try:
        value = r.number("edit_strength", 0.0, 1.0)
    except EngineConfigError:
        raise r.fail("edit_strength", why) from None
    if value == 0.0:
        raise r.fail("edit_strength", why)
    return value


def _ambience(value: object, label: str, settings: Settings) -> AmbienceParams | None:
    """``params.ambience`` (absent: no ambience track, the default)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise EngineConfigError(
            f"{label}: params.ambience must be a table, e.g. "
            '{ model_dir = "/models/stable-audio-open-1.0", steps = 100 }'
        )
    table = cast(Mapping[str, object], value)
    unknown = sorted(set(table) - AMBIENCE_KEYS)
    if unknown:
        raise EngineConfigError(
            f"{label}: unknown params.ambience keys {unknown}; "
            f"allowed: {', '.join(sorted(AMBIENCE_KEYS))}"
        )
    r = _Reader(table, label, settings, prefix="ambience.")
    model_dir = r.path("model_dir")
    if model_dir is None:
        raise r.fail("model_dir", "is required: a StableAudioPipeline directory")
    steps = r.integer("steps", 1, 500)
    guidance = r.number("guidance", 0.0, 30.0)
    return AmbienceParams(
        model_dir=model_dir,
        steps=100 if steps is None else steps,
        guidance=7.0 if guidance is None else guidance,
        negative_prompt=r.text("negative_prompt") or "",
        seed=r.integer("seed", 0, 2**32 - 1),
    )


def require_packages(label: str, names: Iterable[str]) -> None:
    """Fail clearly when the ``gpu`` extra is not installed."""
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing:
        raise EngineConfigError(
            f"{label}: needs the gpu extra (missing {', '.join(missing)}): "
            "pip install 'reel-server[gpu]' (see docs/models.md)"
        )
