"""Decoding, validating and re-encoding user images with Pillow.

Nothing about the bytes is trusted, neither the Content-Type they arrived with nor the
format they claim: Pillow identifies them, among a short list of plain raster formats. The
pixel count is checked from the header, before a single pixel is decoded. Then the first
frame is decoded (a JPEG at a reduced scale when a smaller size is all that is needed),
scaled down to what the video needs, turned upright by its EXIF orientation, flattened onto
white if it has transparency, and written back out as an RGB PNG.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass
from typing import Final

import httpx
import PIL.Image
from PIL import ImageOps, UnidentifiedImageError

from reel.media.errors import ImageDecodeError, ImageFetchError
from reel.net import FetchError, FetchPolicy, Resolver, fetch_bytes

__all__ = ["Image", "decode_image", "download_image", "fetch_image"]

#: Formats we let Pillow try. Others (EPS runs Ghostscript, PDF, PSD, ...) are refused.
_FORMATS: Final = ("PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF")
_BACKGROUND: Final = (255, 255, 255)
#: What Pillow's decoders raise on bad input (UnidentifiedImageError is an OSError).
_BROKEN: Final = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


@dataclass(frozen=True)
class Image:
    """A decoded image, re-encoded as an RGB PNG."""

    png: bytes
    width: int
    height: int


def decode_image(data: bytes, *, max_pixels: int, fit: tuple[int, int] | None = None) -> Image:
    """Decode ``data`` (PNG, JPEG, WebP, GIF first frame, ...) into an upright RGB PNG.

    With ``fit`` (width, height), the result is scaled down to the smallest size that still
    covers it (never up): the work and memory of what follows, and the stored PNG, are those
    of the video's size, not of the upload's; a JPEG is even decoded at a reduced scale.

    Raises ``ImageDecodeError`` if the bytes are not an image in an accepted format, if the
    image has more than ``max_pixels`` pixels (checked before decoding), or if it is
    truncated or corrupt. Pillow's global ``MAX_IMAGE_PIXELS`` is left alone.
    """
    try:
        with PIL.Image.open(io.BytesIO(data), formats=_formats()) as probe:
            _check_pixels(probe.size, max_pixels)
            probe.verify()
        # verify() leaves the image unusable; decode from a fresh one.
        with PIL.Image.open(io.BytesIO(data), formats=_formats()) as frame:
            _check_pixels(frame.size, max_pixels)
            if fit is None:
                frame.load()
                rgb = _to_rgb(ImageOps.exif_transpose(frame))
            else:
                rgb = _reduced(frame, fit)
    except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError("The image has too many pixels.") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("The file is not an image in a supported format.") from exc
    except _BROKEN as exc:
        raise ImageDecodeError("The image file is truncated or corrupt.") from exc
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return Image(png=out.getvalue(), width=rgb.width, height=rgb.height)


def fetch_image(
    url: str,
    policy: FetchPolicy,
    *,
    max_pixels: int,
    fit: tuple[int, int] | None = None,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Image:
    """Download ``url`` with ``fetch_bytes`` and decode it with ``decode_image``."""
    return decode_image(
        download_image(url, policy, resolver=resolver, transport=transport),
        max_pixels=max_pixels,
        fit=fit,
    )


def download_image(
    url: str,
    policy: FetchPolicy,
    *,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> bytes:
    """The bytes at ``url`` (``fetch_bytes``), fetch errors as ``ImageFetchError``."""
    try:
        return fetch_bytes(url, policy, resolver=resolver, transport=transport)
    except FetchError as exc:
        raise ImageFetchError(exc.message) from exc


def _formats() -> tuple[str, ...]:
    PIL.Image.init()  # registers every plugin once; cheap afterwards
    return tuple(name for name in _FORMATS if name in PIL.Image.OPEN)


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"The image is {width}x{height} pixels; at most {max_pixels} pixels are allowed."
        )


#: EXIF orientation → the transpose that makes the image upright (as ImageOps.exif_transpose).
_UPRIGHT: Final = {
    2: PIL.Image.Transpose.FLIP_LEFT_RIGHT,
    3: PIL.Image.Transpose.ROTATE_180,
    4: PIL.Image.Transpose.FLIP_TOP_BOTTOM,
    5: PIL.Image.Transpose.TRANSPOSE,
    6: PIL.Image.Transpose.ROTATE_270,
    7: PIL.Image.Transpose.TRANSVERSE,
    8: PIL.Image.Transpose.ROTATE_90,
}


def _reduced(frame: PIL.Image.Image, fit: tuple[int, int]) -> PIL.Image.Image:
    """Decode ``frame`` no larger than needed to cover ``fit``; RGB and upright."""
    orientation = frame.getexif().get(0x0112)
    turned = orientation in (5, 6, 7, 8)  # a quarter turn: fit the stored pixels sideways
    target = _cover(frame.size, (fit[1], fit[0]) if turned else fit)
    frame.draft(None, target)  # JPEG: decode at 1/2, 1/4 or 1/8 scale when that still covers
    frame.load()
    rgb = _to_rgb(frame)  # before scaling: palettes and transparency need the source pixels
    if rgb.width > target[0] or rgb.height > target[1]:
        rgb = rgb.resize(target, PIL.Image.Resampling.LANCZOS, reducing_gap=3.0)
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return rgb.transpose(method) if method is not None else rgb


def _cover(size: tuple[int, int], fit: tuple[int, int]) -> tuple[int, int]:
    """The smallest size with ``size``'s aspect that covers ``fit`` (``size`` if smaller)."""
    width, height = size
    scale = min(1.0, max(fit[0] / width, fit[1] / height))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _to_rgb(img: PIL.Image.Image) -> PIL.Image.Image:
    if img.mode.startswith("I;16"):
        img = img.point(lambda value: value / 256)  # 16-bit grey: scale, don't clip
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        flat = PIL.Image.new("RGB", rgba.size, _BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB")
