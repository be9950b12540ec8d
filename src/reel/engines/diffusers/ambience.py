"""An ambience track for a silent model's video: Stable Audio on the task's prompt.

Optional (``params.ambience`` in the models file; off by default). The folder is checked at
worker start like the video model's (:func:`check`), loaded with the video pipelines
(:func:`load`, on the same device and dtype) and run once the video's frames are
rendered (:func:`render`) for the video's duration. A clip longer than the model's
longest (Stable Audio Open 1.0: 47.55 s) is rendered in pieces joined by an equal-power
cross-fade. Every report of its steps goes through the task's progress sink, so a cancel
stops it at the next step. torch and diffusers are imported only when it runs.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, TypedDict

import numpy as np

from reel.engines.base import EngineConfigError, EngineError, ProgressSink
from reel.engines.diffusers.model_files import check_model_dir, read_config
from reel.engines.diffusers.params import AmbienceParams
from reel.media.audio import Samples
from reel.types import Stage

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

__all__ = ["AudioFormat", "audio_format", "check", "join_pieces", "load", "quiet_oobleck", "render"]

log = logging.getLogger("reel.engines")

_CLASSES: Final = frozenset({"StableAudioPipeline"})
#: Schedulers that need the torchsde package (Stable Audio Open 1.0 ships the cosine one).
_SDE_SCHEDULERS: Final = frozenset({"CosineDPMSolverMultistepScheduler", "DPMSolverSDEScheduler"})
#: Where the engine's progress stands while the ambience renders (the frames are done).
_PERCENT: Final = 98.0
#: Cross-fade between pieces of a clip longer than the model's longest, in seconds.
_FADE_S: Final = 0.5


def check(a: AmbienceParams | None, *, label: str) -> None:
    """At worker start: ``a.model_dir`` is a complete ``StableAudioPipeline`` folder."""
    if a is None:
        return
    where = f"{label}: params.ambience"
    check_model_dir(a.model_dir, label=where, classes=_CLASSES)
    scheduler = read_config(a.model_dir, "scheduler").get("_class_name")
    if scheduler in _SDE_SCHEDULERS and importlib.util.find_spec("torchsde") is None:
        raise EngineConfigError(
            f"{where}: its scheduler ({scheduler}) needs torchsde: "
            "pip install 'reel-server[ambience]' (see docs/models.md)"
        )


def load(a: AmbienceParams | None, dtype: torch.dtype, *, label: str) -> DiffusionPipeline | None:
    """The text-to-audio pipeline, from disk only, on the CPU (placed like the video's)."""
    if a is None:
        return None
    from diffusers import StableAudioPipeline

    try:
        with quiet_oobleck():
            pipe: DiffusionPipeline = StableAudioPipeline.from_pretrained(
                str(a.model_dir), local_files_only=True, dtype=dtype
            )
    except (OSError, ValueError) as exc:
        raise EngineConfigError(
            f"{label}: params.ambience: could not load {a.model_dir}: {exc}"
        ) from exc
    return pipe


class AudioFormat(TypedDict, total=False):
    """:class:`~reel.media.video.VideoWriter`'s audio arguments."""

    audio_rate: int
    audio_channels: int


def audio_format(pipe: DiffusionPipeline | None) -> AudioFormat:
    """The ``VideoWriter`` arguments for ``pipe``'s waveform (none without ambience)."""
    if pipe is None:
        return {}
    vae: Any = pipe.vae
    channels = int(vae.config.audio_channels)
    return {"audio_rate": int(vae.config.sampling_rate), "audio_channels": min(channels, 2)}


def render(
    pipe: DiffusionPipeline,
    a: AmbienceParams,
    prompt: str,
    duration_s: float,
    seed: int,
    *,
    progress: ProgressSink,
    label: str,
) -> Samples:
    """``channels x n`` float32 samples covering ``duration_s`` at the model's rate."""
    import torch

    model: Any = pipe
    rate = int(model.vae.config.sampling_rate)
    longest = _longest_s(model)
    fade = min(_FADE_S, longest / 4)
    count = 1 if duration_s <= longest else math.ceil((duration_s - fade) / (longest - fade))
    step = (duration_s - fade) / count + fade if count > 1 else duration_s
    seed = a.seed if a.seed is not None else seed

    def on_step(_step: int, _timestep: object, _latents: object) -> None:
        progress(Stage.ENCODING, _PERCENT)  # may raise Interrupted: stops before the next step

    pieces: list[Samples] = []
    for index in range(count):
        try:
            with torch.inference_mode():
                out = model(
                    prompt=prompt,
                    negative_prompt=a.negative_prompt or None,
                    audio_start_in_s=0.0,
                    audio_end_in_s=min(step, longest),
                    num_inference_steps=a.steps,
                    guidance_scale=a.guidance,
                    generator=torch.Generator("cpu").manual_seed(seed + index),
                    output_type="np",
                    callback=on_step,
                    callback_steps=1,
                )
        except (torch.OutOfMemoryError, MemoryError):
            raise  # the engine frees memory and names the cause
        except (RuntimeError, ValueError) as exc:
            log.exception("%s: the ambience track failed", label)
            raise EngineError(f"{label}: the ambience track failed") from exc
        samples = np.asarray(out.audios[0], dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[None, :]
        if not np.isfinite(samples).all():
            raise EngineError(f"{label}: the ambience model produced invalid audio (NaN values)")
        pieces.append(np.clip(samples[:2], -1.0, 1.0))
    return join_pieces(pieces, round(fade * rate))


def join_pieces(pieces: list[Samples], overlap: int) -> Samples:
    """Consecutive pieces, each overlapping the one before by ``overlap`` samples,
    joined by an equal-power cross-fade (their sounds are unrelated)."""
    joined = pieces[0]
    for piece in pieces[1:]:
        width = min(overlap, joined.shape[1], piece.shape[1])
        ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)
        seam = joined[:, -width:] * np.cos(ramp * np.pi / 2) + piece[:, :width] * np.sin(
            ramp * np.pi / 2
        )
        joined = np.concatenate([joined[:, : joined.shape[1] - width], seam, piece[:, width:]], 1)
    return joined.astype(np.float32, copy=False)


def _longest_s(model: Any) -> float:
    """The longest clip one call makes: the transformer's length, and what the duration
    conditioning accepts."""
    vae, transformer = model.vae, model.transformer
    longest = transformer.config.sample_size * vae.hop_length / vae.config.sampling_rate
    return float(min(longest, model.projection_model.config.max_value))


@contextmanager
def quiet_oobleck() -> Iterator[None]:
    """Silence the FutureWarning diffusers' Stable Audio VAE raises on every build (it still
    calls ``torch.nn.utils.weight_norm``); nothing a models file can change."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm", category=FutureWarning)
        yield
