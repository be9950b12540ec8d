"""What every diffusers engine needs at run time, apart from a model family: the shared
pipeline slots (one loaded copy and one lock per configuration in a process), devices and
dtypes, the fastest attention backend, freeing memory, frame fitting, and writing the
output video."""

from __future__ import annotations

import gc
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from reel.engines.base import EngineConfigError, EngineError, EngineOutput, GenerationRequest
from reel.engines.diffusers.geometry import Geometry
from reel.engines.diffusers.params import Dtype
from reel.engines.diffusers.segments import Frames
from reel.media.video import RGBFrame, VideoEncodeError, VideoWriter
from reel.types import Mode

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline, ModelMixin

__all__ = [
    "LoadedPipelines",
    "Slot",
    "device_of",
    "distinct",
    "dtype_of",
    "fastest_attention",
    "fit",
    "free_memory",
    "output",
    "slot_for",
    "start_frame",
    "to_frames",
    "writing",
]

_T = TypeVar("_T")


@dataclass(slots=True)
class LoadedPipelines:
    """The pipelines one engine drives, loaded once per worker process."""

    #: Text-to-video pipeline (``None``: the model cannot do text-to-video).
    t2v: DiffusionPipeline | None
    #: Image-to-video pipeline, often sharing every module with ``t2v``.
    i2v: DiffusionPipeline | None
    #: Distinct denoising transformers, for compile / attention backend / caching.
    transformers: list[ModelMixin] = field(default_factory=list["ModelMixin"])
    #: Distinct VAEs, for tiling and slicing.
    vaes: list[ModelMixin] = field(default_factory=list["ModelMixin"])
    #: Further pipelines on the same modules (continuation, upsampling), placed like the two.
    others: list[DiffusionPipeline] = field(default_factory=list["DiffusionPipeline"])
    #: Text-to-audio pipeline for a silent model's ambience track (``params.ambience``).
    ambience: DiffusionPipeline | None = None


# --- shared pipelines ------------------------------------------------------------------------


class Slot:
    """Loaded pipelines and the lock that serialises jobs on them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pipes: LoadedPipelines | None = None


#: One slot per distinct loaded configuration in this process, dropped with its last engine.
_SLOTS: weakref.WeakValueDictionary[tuple[object, ...], Slot] = weakref.WeakValueDictionary()
_SLOTS_LOCK: Final = threading.Lock()


def slot_for(key: tuple[object, ...]) -> Slot:
    with _SLOTS_LOCK:
        slot = _SLOTS.get(key)
        if slot is None:
            slot = _SLOTS[key] = Slot()
        return slot


# --- helpers -------------------------------------------------------------------------------


def distinct(*objects: _T | None) -> list[_T]:
    """The non-``None`` objects, each once (pipelines share modules)."""
    seen: dict[int, _T] = {}
    for obj in objects:
        if obj is not None:
            seen.setdefault(id(obj), obj)
    return list(seen.values())


def device_of(name: str) -> torch.device:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise EngineConfigError(f"params.device: unknown device {name!r}") from exc


def dtype_of(name: Dtype | None, device: torch.device) -> torch.dtype:
    import torch

    if name is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    dtype: torch.dtype = getattr(torch, name)
    return dtype


def fastest_attention() -> str | None:
    """``attention_backend: auto``: the fastest exact attention installed, else ``None``
    (PyTorch's own scaled-dot-product attention)."""
    import torch
    from diffusers.utils import is_flash_attn_3_available, is_flash_attn_available

    if not torch.cuda.is_available():
        return None
    if is_flash_attn_3_available() and torch.cuda.get_device_capability() >= (9, 0):
        return "_flash_3"  # FlashAttention 3: Hopper and newer
    if is_flash_attn_available():
        return "flash"
    return None


def free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")  # never import it just to free nothing
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def start_frame(req: GenerationRequest, geometry: Geometry) -> Frames | None:
    """For image-to-video, the start image cover-fitted to the generation size (no
    stretching); else ``None``."""
    if req.mode is not Mode.IMAGE_TO_VIDEO:
        return None
    if req.image_path is None:
        raise EngineError("Image-to-video needs a start image")
    size = (geometry.gen_width, geometry.gen_height)
    try:
        with Image.open(req.image_path) as image:
            fitted = ImageOps.fit(image.convert("RGB"), size, Image.Resampling.LANCZOS)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise EngineError("Could not read the start image") from exc
    return np.asarray(fitted, dtype=np.uint8)


def fit(frame: RGBFrame, width: int, height: int) -> RGBFrame:
    """Scale (and centre-crop to the aspect ratio) a generated frame to the output size."""
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    image = ImageOps.fit(Image.fromarray(frame), (width, height), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def to_frames(video: object, *, label: str) -> Frames:
    """A pipeline's ``output_type="np"`` video (floats in ``[0, 1]``) as uint8 frames; NaN
    values (a dtype overflow) are an :class:`EngineError`."""
    frames = np.asarray(video, dtype=np.float32)
    if not np.isfinite(frames).all():
        raise EngineError(
            f"{label}: the model produced an invalid video (NaN values); try another dtype or seed"
        )
    return np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)


@contextmanager
def writing(
    req: GenerationRequest,
    geometry: Geometry,
    *,
    label: str,
    audio_rate: int | None = None,
    audio_channels: int = 2,
) -> Iterator[VideoWriter]:
    """The :class:`VideoWriter` of ``req``'s output at ``geometry``'s output size and rate (with
    an audio track at ``audio_rate``); a failure to encode is an :class:`EngineError`."""
    try:
        with VideoWriter(
            req.output_path,
            width=geometry.out_width,
            height=geometry.out_height,
            fps=geometry.fps,
            audio_rate=audio_rate,
            audio_channels=audio_channels,
        ) as writer:
            yield writer
    except VideoEncodeError as exc:
        raise EngineError(f"{label}: could not encode the video") from exc


def output(
    req: GenerationRequest,
    geometry: Geometry,
    frames: int,
    metadata: Mapping[str, object] | None = None,
) -> EngineOutput:
    """What :func:`writing` wrote: ``frames`` frames at ``geometry``'s output size and rate."""
    return EngineOutput(
        path=req.output_path,
        width=geometry.out_width,
        height=geometry.out_height,
        fps=float(geometry.fps),
        frames=frames,
        metadata=metadata or {},
    )
