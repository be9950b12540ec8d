"""Decoding, validating and re-encoding user images with Pillow.

Nothing about the bytes is trusted, neither the Content-Type they arrived with nor the
format they claim: Pillow identifies them, among a short list of plain raster formats. The
pixel count is checked from the header, before a single pixel is decoded. Then the first
frame is decoded in full, turned upright by its EXIF orientation, flattened onto white if
it has transparency, and written back out as an RGB PNG.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Final

import httpx
import PIL.Image
from PIL import ImageOps, UnidentifiedImageError

from reel.media.errors import ImageDecodeError, ImageFetchError
from reel.net import FetchError, FetchPolicy, Resolver, fetch_bytes

__all__ = ["Image", "decode_image", "fetch_image"]

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


def decode_image(data: bytes, *, max_pixels: int) -> Image:
    """Decode ``data`` (PNG, JPEG, WebP, GIF first frame, ...) into an upright RGB PNG.

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
            frame.load()
            rgb = _to_rgb(ImageOps.exif_transpose(frame))
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
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Image:
    """Download ``url`` with ``fetch_bytes`` and decode it with ``decode_image``."""
    try:
        data = fetch_bytes(url, policy, resolver=resolver, transport=transport)
    except FetchError as exc:
        raise ImageFetchError(exc.message) from exc
    return decode_image(data, max_pixels=max_pixels)


def _formats() -> tuple[str, ...]:
    PIL.Image.init()  # registers every plugin once; cheap afterwards
    return tuple(name for name in _FORMATS if name in PIL.Image.OPEN)


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"The image is {width}x{height} pixels; at most {max_pixels} pixels are allowed."
        )


def _to_rgb(img: PIL.Image.Image) -> PIL.Image.Image:
    if img.mode.startswith("I;16"):
        img = img.point(lambda value: value / 256)  # 16-bit grey: scale, don't clip
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        flat = PIL.Image.new("RGB", rgba.size, _BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB")
