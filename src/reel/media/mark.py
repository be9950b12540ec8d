"""A visible mark (text or a PNG) burned into every frame of a video.

:class:`Mark` is the frame transform: it renders the mark once for a frame size and blends it
into each RGB frame. :func:`burn_in` re-encodes a finished MP4 through it, copying the audio
track (if any) untouched, so the mark works the same for every engine, upstream results
included.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final, Literal

import av
import numpy as np
import numpy.typing as npt
from av.error import FFmpegError
from av.video.frame import VideoFrame
from PIL import Image, ImageDraw, ImageFont

from reel.media.video import RGBFrame, VideoEncodeError

__all__ = ["POSITIONS", "Mark", "MarkSpec", "Position", "burn_in"]

Position = Literal["top-left", "top-right", "bottom-left", "bottom-right", "center"]
POSITIONS: Final[tuple[Position, ...]] = (
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
    "center",
)
_PYAV_ERRORS = (FFmpegError, OSError)


@dataclass(frozen=True, slots=True)
class MarkSpec:
    """What to draw and where. Exactly one of ``text`` and ``image`` is set."""

    text: str | None = None
    #: A PNG (its alpha channel is kept).
    image: Path | None = None
    position: Position = "bottom-right"
    #: The mark's height as a fraction of the frame's shorter side.
    size: float = 0.06
    #: 0 (invisible) to 1 (opaque).
    opacity: float = 0.7
    #: Distance from the frame's edges, as a fraction of its shorter side.
    margin: float = 0.03

    def __post_init__(self) -> None:
        if (self.text is None) == (self.image is None):
            raise ValueError("a mark needs either text or an image")
        if self.text is not None and not self.text.strip():
            raise ValueError("a text mark needs some text")
        if self.position not in POSITIONS:
            raise ValueError(f"mark position must be one of {', '.join(POSITIONS)}")
        if not 0 < self.size <= 1 or not 0 <= self.opacity <= 1 or not 0 <= self.margin < 0.5:
            raise ValueError("mark size must be in (0, 1], opacity in [0, 1], margin in [0, 0.5)")


class Mark:
    """The mark rendered for ``width`` x ``height`` frames; call it on each frame."""

    def __init__(self, spec: MarkSpec, width: int, height: int) -> None:
        short = min(width, height)
        target = max(8, round(spec.size * short))
        overlay = _render(spec, target, max(1, width - 2 * round(spec.margin * short)))
        ow, oh = overlay.size
        ow, oh = min(ow, width), min(oh, height)
        overlay = overlay.crop((0, 0, ow, oh))
        gap = round(spec.margin * short)
        x = {"left": gap, "right": width - ow - gap}.get(spec.position.partition("-")[2], 0)
        y = {"top": gap, "bottom": height - oh - gap}.get(spec.position.partition("-")[0], 0)
        if spec.position == "center":
            x, y = (width - ow) // 2, (height - oh) // 2
        self._x, self._y = max(0, x), max(0, y)
        pixels = np.asarray(overlay, dtype=np.float32)
        self._color: npt.NDArray[np.float32] = pixels[..., :3]
        self._alpha: npt.NDArray[np.float32] = pixels[..., 3:] / 255.0 * spec.opacity
        self.size = (width, height)

    def __call__(self, frame: RGBFrame) -> RGBFrame:
        h, w = self._alpha.shape[:2]
        out = frame.copy()
        region = out[self._y : self._y + h, self._x : self._x + w].astype(np.float32)
        blended = region * (1 - self._alpha) + self._color * self._alpha
        out[self._y : self._y + h, self._x : self._x + w] = np.clip(blended + 0.5, 0, 255).astype(
            np.uint8
        )
        return out


def _render(spec: MarkSpec, height: int, max_width: int) -> Image.Image:
    if spec.image is not None:
        with Image.open(spec.image) as source:
            image = source.convert("RGBA")
        width = max(1, round(image.width * height / image.height))
        if width > max_width:
            width, height = max_width, max(1, round(image.height * max_width / image.width))
        return image.resize((width, height), Image.Resampling.LANCZOS)
    assert spec.text is not None
    text = " ".join(spec.text.split())
    font = ImageFont.load_default(size=height)
    stroke = max(1, height // 14)
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    if right - left > max_width:  # too long for the frame: shrink to fit
        font = ImageFont.load_default(size=max(6, height * max_width // (right - left)))
        left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    image = Image.new("RGBA", (int(right - left), int(bottom - top)), (0, 0, 0, 0))
    ImageDraw.Draw(image).text(
        (-left, -top),
        text,
        font=font,
        fill=(255, 255, 255, 255),
        stroke_width=stroke,
        stroke_fill=(0, 0, 0, 255),
    )
    return image


def burn_in(src: Path, dst: Path, spec: MarkSpec, *, crf: int = 18) -> None:
    """Re-encode ``src`` to ``dst`` (H.264, ``+faststart``) with the mark on every frame.

    Audio and the frame timing are copied as they are. ``dst`` appears only when complete.
    """
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.part")
    try:
        with av.open(str(src), format="mov") as source:  # MP4/MOV only, never guessed
            if not source.streams.video:
                raise VideoEncodeError("The video has no video stream to mark")
            video = source.streams.video[0]
            rate = video.average_rate or video.guessed_rate or Fraction(24)
            with av.open(
                str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}
            ) as out:
                encoder = out.add_stream("libx264", rate=rate)  # pyright: ignore[reportUnknownMemberType]
                encoder.width, encoder.height = video.width, video.height
                encoder.pix_fmt = "yuv420p"
                encoder.options = {"crf": str(crf), "preset": "veryfast"}
                audio = {s.index: out.add_stream_from_template(s) for s in source.streams.audio}
                mark = Mark(spec, video.width, video.height)
                for packet in source.demux(video, *source.streams.audio):
                    if packet.stream.index in audio:
                        if packet.dts is not None:
                            packet.stream = audio[packet.stream.index]
                            out.mux(packet)
                        continue
                    for frame in packet.decode():
                        if not isinstance(frame, VideoFrame):
                            continue
                        marked = VideoFrame.from_ndarray(
                            mark(frame.to_ndarray(format="rgb24").astype(np.uint8, copy=False)),
                            format="rgb24",
                        )
                        marked.pts, marked.time_base = frame.pts, frame.time_base
                        out.mux(encoder.encode(marked))  # pyright: ignore[reportUnknownMemberType]
                out.mux(encoder.encode(None))  # pyright: ignore[reportUnknownMemberType]
        os.replace(tmp, dst)
    except _PYAV_ERRORS as exc:
        raise VideoEncodeError("The visible mark could not be applied") from exc
    finally:
        tmp.unlink(missing_ok=True)
