"""Decoding and re-encoding images, and fetching them over a loopback server."""

from __future__ import annotations

import io
import struct
import time
import zlib

import PIL.Image
import pytest

from reel.media.errors import ImageDecodeError, ImageFetchError
from reel.media.images import Image, decode_image, fetch_image
from reel.net.fetch import FetchPolicy
from tests.loopback import LoopbackServer

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
PLENTY = 10_000_000


def encode(img: PIL.Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def halves(size: tuple[int, int] = (40, 20)) -> PIL.Image.Image:
    """Left half red, right half blue."""
    img = PIL.Image.new("RGB", size, RED)
    img.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return img


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def grey1_png(width: int, height: int, *, idat: bytes | None = None) -> bytes:
    """A 1-bit greyscale PNG of zeros, hand-built, or with ``idat`` as its pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"\x00" * (1 + (width + 7) // 8) * height, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def reopen(image: Image) -> PIL.Image.Image:
    out = PIL.Image.open(io.BytesIO(image.png))
    assert out.format == "PNG"
    assert out.mode == "RGB"
    assert out.size == (image.width, image.height)
    return out


def close_to(
    actual: float | tuple[int, ...] | None, expected: tuple[int, int, int], slack: int = 12
) -> bool:
    assert isinstance(actual, tuple)
    return all(abs(a - e) <= slack for a, e in zip(actual, expected, strict=True))


# --- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_accepted_formats_come_out_as_rgb_png(fmt: str) -> None:
    image = decode_image(encode(halves(), fmt), max_pixels=PLENTY)
    assert (image.width, image.height) == (40, 20)
    out = reopen(image)
    assert close_to(out.getpixel((2, 10)), RED)
    assert close_to(out.getpixel((37, 10)), BLUE)


def test_cmyk_jpeg_is_converted() -> None:
    image = decode_image(encode(halves().convert("CMYK"), "JPEG"), max_pixels=PLENTY)
    assert close_to(reopen(image).getpixel((2, 10)), RED, slack=20)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    image = decode_image(encode(PIL.Image.new("I;16", (4, 4), 40000), "PNG"), max_pixels=PLENTY)
    assert close_to(reopen(image).getpixel((0, 0)), (156, 156, 156), slack=1)


def test_transparency_is_flattened_onto_white() -> None:
    img = PIL.Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    img.putpixel((0, 0), (0, 0, 255, 0))
    out = reopen(decode_image(encode(img, "PNG"), max_pixels=PLENTY))
    assert out.getpixel((0, 0)) == WHITE
    assert out.getpixel((3, 3)) == RED


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_is_flattened_without_warnings(fmt: str) -> None:
    img = PIL.Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    img.putpixel((3, 3), 1)
    out = reopen(decode_image(encode(img, fmt, transparency=0), max_pixels=PLENTY))
    assert out.getpixel((0, 0)) == WHITE
    assert out.getpixel((3, 3)) == RED


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animations_give_their_first_frame(fmt: str) -> None:
    first, second = PIL.Image.new("RGB", (8, 8), RED), PIL.Image.new("RGB", (8, 8), BLUE)
    data = encode(first, fmt, save_all=True, append_images=[second], duration=100, loop=0)
    assert getattr(PIL.Image.open(io.BytesIO(data)), "n_frames", 1) == 2  # really animated
    assert close_to(reopen(decode_image(data, max_pixels=PLENTY)).getpixel((4, 4)), RED)


def test_exif_orientation_is_applied() -> None:
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    image = decode_image(encode(halves(), "JPEG", exif=exif), max_pixels=PLENTY)
    assert (image.width, image.height) == (20, 40)
    out = reopen(image)
    assert close_to(out.getpixel((10, 2)), RED)  # the left half is now on top
    assert close_to(out.getpixel((10, 37)), BLUE)


# --- refusals --------------------------------------------------------------------------------


def test_pixel_cap_is_inclusive() -> None:
    data = encode(PIL.Image.new("RGB", (100, 100)), "PNG")
    assert decode_image(data, max_pixels=10_000).width == 100
    with pytest.raises(ImageDecodeError, match="100x100 pixels"):
        decode_image(data, max_pixels=9_999)


def test_pixels_are_counted_from_the_header_before_decoding() -> None:
    # The pixel data is not even zlib: had decoding started, this would be reported as
    # corrupt rather than as too many pixels.
    data = grey1_png(5000, 5000, idat=b"not zlib at all")
    with pytest.raises(ImageDecodeError, match="5000x5000 pixels"):
        decode_image(data, max_pixels=1_000_000)
    with pytest.raises(ImageDecodeError, match="corrupt"):
        decode_image(data, max_pixels=25_000_000)


@pytest.mark.parametrize("side", [9_000, 20_000, 100_000])
def test_decompression_bombs_are_refused_quickly(side: int) -> None:
    # A complete, valid PNG of side*side pixels in a few kilobytes. 9000 stays under Pillow's
    # own limit (our cap catches it); 20000 and 100000 trip Pillow's bomb check in open().
    data = grey1_png(side, side) if side < 50_000 else grey1_png(side, side, idat=b"")
    assert len(data) < 300_000
    limit_before = PIL.Image.MAX_IMAGE_PIXELS
    started = time.monotonic()
    with pytest.raises(ImageDecodeError, match="pixels"):
        decode_image(data, max_pixels=4_000_000)
    assert time.monotonic() - started < 2.0
    assert limit_before == PIL.Image.MAX_IMAGE_PIXELS


def test_a_big_valid_image_under_a_big_cap_decodes() -> None:
    # The counterpart of the bomb test: the same kind of file is fine when allowed.
    image = decode_image(grey1_png(2000, 1000), max_pixels=2_000_000)
    assert (image.width, image.height) == (2000, 1000)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_truncated_files_are_refused(fmt: str) -> None:
    noisy = PIL.Image.effect_noise((64, 64), 100).convert("RGB")
    data = encode(noisy, fmt)
    with pytest.raises(ImageDecodeError, match=r"truncated or corrupt|supported format"):
        decode_image(data[: len(data) // 2], max_pixels=PLENTY)


def test_truncated_png_is_reported_as_truncated() -> None:
    data = encode(PIL.Image.effect_noise((64, 64), 100), "PNG")
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2], max_pixels=PLENTY)


def test_a_png_with_a_bad_checksum_is_refused() -> None:
    data = bytearray(encode(PIL.Image.effect_noise((16, 16), 100), "PNG"))
    data[50] ^= 0xFF  # inside the IDAT data
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode_image(bytes(data), max_pixels=PLENTY)


@pytest.mark.parametrize(
    "data",
    [b"", b"<!doctype html><html><body>hello</body></html>", b"\x89PNG\r\n\x1a\n", b"GIF89a"],
)
def test_non_images_are_refused(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        decode_image(data, max_pixels=PLENTY)


def test_formats_outside_the_list_are_refused() -> None:
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n"
    assert PIL.Image.open(io.BytesIO(eps)).format == "EPS"  # Pillow alone would take it
    with pytest.raises(ImageDecodeError, match="supported format"):
        decode_image(eps, max_pixels=PLENTY)


# --- fetch_image -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_fetch_image_over_loopback(
    server: LoopbackServer, loopback_policy: FetchPolicy, fmt: str
) -> None:
    server.serve("/img", encode(halves(), fmt), content_type=f"image/{fmt.lower()}")
    image = fetch_image(server.url("/img"), loopback_policy, max_pixels=PLENTY)
    assert close_to(reopen(image).getpixel((37, 10)), BLUE)


def test_the_content_type_is_not_trusted(
    server: LoopbackServer, loopback_policy: FetchPolicy
) -> None:
    server.serve("/lie", b"<html><body>not an image</body></html>", content_type="image/png")
    server.serve("/modest", encode(halves(), "PNG"), content_type="text/html")
    with pytest.raises(ImageDecodeError):
        fetch_image(server.url("/lie"), loopback_policy, max_pixels=PLENTY)
    assert fetch_image(server.url("/modest"), loopback_policy, max_pixels=PLENTY).width == 40


def test_fetch_image_refuses_huge_dimensions(
    server: LoopbackServer, loopback_policy: FetchPolicy
) -> None:
    server.serve("/bomb", grey1_png(20_000, 20_000), content_type="image/png")
    with pytest.raises(ImageDecodeError, match="pixels"):
        fetch_image(server.url("/bomb"), loopback_policy, max_pixels=4_000_000)


def test_fetch_image_passes_fetch_errors_through(
    server: LoopbackServer, loopback_policy: FetchPolicy
) -> None:
    with pytest.raises(ImageFetchError, match="404"):
        fetch_image(server.url("/missing"), loopback_policy, max_pixels=PLENTY)
    with pytest.raises(ImageFetchError, match="private"):
        fetch_image("http://10.0.0.1/cat.png", loopback_policy, max_pixels=PLENTY)
