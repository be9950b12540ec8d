"""Wan VACE (``WanVACEPipeline``: Wan2.1-VACE-1.3B/14B): text-to-video, image-to-video and
characters from one set of weights.

VACE adds a control branch to a Wan text-to-video transformer. It is given a control video, a
mask (white: generate, black: keep) and optional reference images:

- **text-to-video**: no control video (the pipeline fills in an empty one, all to generate);
- **image-to-video** (and so chained passes and extensions): the control video is the start
  frame followed by grey frames, the mask black on the first frame and white after it, VACE's
  own first-frame task;
- **characters**: their reference frames go in as ``reference_images``, in every pass. VACE
  sees them as extra leading latent frames and drops them before decoding, so the output keeps
  its frame count.

VACE models do not edit: an edit here is a pass over the source's own pixels, which VACE's
control branch does not take (it expects depth, pose, grey-scale or masked frames).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from PIL import Image, UnidentifiedImageError

from reel.engines.base import EngineError
from reel.engines.diffusers.runtime import fit
from reel.engines.diffusers.segments import Frames

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

__all__ = ["VACE", "is_vace", "vace_conditioning"]

#: The ``_class_name`` of a VACE folder's ``model_index.json``.
VACE: Final = "WanVACEPipeline"
#: The "nothing here" value VACE's control frames are filled with (mid grey).
_GREY: Final = (128, 128, 128)


def is_vace(pipe: DiffusionPipeline | None) -> bool:
    from diffusers import WanVACEPipeline

    return isinstance(pipe, WanVACEPipeline)


def vace_conditioning(
    kwargs: dict[str, object], condition: Frames | None, references: tuple[Path, ...], label: str
) -> None:
    """Add VACE's control inputs for one pass to its ``kwargs`` (which hold its size and
    frame count): the start frame ``condition`` as a first-frame task, and ``references``."""
    width, height = _int(kwargs["width"]), _int(kwargs["height"])
    count = _int(kwargs["num_frames"])
    if condition is not None:
        size = (width, height)
        first = Image.fromarray(fit(condition, width, height))
        blank = Image.new("RGB", size, _GREY)
        keep, generate = Image.new("L", size, 0), Image.new("L", size, 255)
        kwargs["video"] = [first, *[blank] * (count - 1)]
        kwargs["mask"] = [keep, *[generate] * (count - 1)]
    if references:
        kwargs["reference_images"] = [_reference(path, label) for path in references]


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _reference(path: Path, label: str) -> Image.Image:
    """A reference frame as an RGB image (VACE scales it into the frame, padded in white)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise EngineError(f"{label}: could not read a character's reference frame") from exc
