"""The sandbox engine: real H.264 videos of moving colour and the prompt, made without a model.

Every frame carries the label "SANDBOX — not a real model". Text-to-video draws a drifting
colour field with a bouncing disc; image-to-video (and an extension, from the source's last
frame) pans and zooms over the image; an edit recolours the source (:mod:`.sandbox_inputs`).
The soundtrack is synthesized (:mod:`reel.engines.sandbox_sound`): a tone bed chosen by the
prompt with a lead tone and blips that follow the disc (or the pan). Everything costly is
prepared once per request; each frame is then a numpy slice or one Pillow resize and blends.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from reel.config import Settings
from reel.engines.base import (
    Capabilities,
    EngineConfigError,
    EngineError,
    EngineOutput,
    GenerationRequest,
    ProgressSink,
)
from reel.engines.sandbox_inputs import EditedScene, References
from reel.engines.sandbox_sound import SOUND_RATE, soundtrack
from reel.media.video import RGBFrame, VideoEncodeError, VideoWriter
from reel.types import Stage

__all__ = ["LABEL", "SandboxEngine"]

#: Drawn on every frame so nobody mistakes sandbox output for a model's.
LABEL: Final = "SANDBOX — not a real model"

_TINY_LONG_SIDE: Final = 64
_TINY_FPS: Final = 4
#: Zoom reached at the end of the image-to-video pan.
_KEN_BURNS_ZOOM: Final = 1.15
#: Longest single sleep, so a cancel is noticed quickly even with a long simulated delay.
_SLEEP_SLICE: Final = 0.25
#: Share of the progress bar spent generating frames; the rest is the encoder flush.
_GENERATING_SHARE: Final = 90.0

_Font: TypeAlias = ImageFont.FreeTypeFont | ImageFont.ImageFont


class SandboxEngine:
    """Renders placeholder videos quickly and deterministically (per task id and seed).

    Settings used: ``sandbox_profile`` (``"tiny"``: 64 px long side at 4 fps),
    ``sandbox_fps`` (``params["fps"]`` overrides it), ``sandbox_delay`` (seconds of
    simulated model time) and ``sandbox_fail_rate`` (chance of a simulated failure).
    """

    name = "sandbox"

    def __init__(
        self,
        *,
        params: Mapping[str, object],
        settings: Settings,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._fps = _fps_param(params, default=settings.sandbox_fps)
        self._sleep = sleep

    def generate(self, req: GenerationRequest, progress: ProgressSink) -> EngineOutput:
        width, height, fps = self._geometry(req)
        total = max(1, round(req.duration_s * fps))
        rng = random.Random(f"{req.task_id}:{req.seed}")
        fail_at = total // 2 if rng.random() < self._settings.sandbox_fail_rate else None
        progress(Stage.GENERATING, 0.0)

        scene: _Scene
        if req.operation == "edit" and req.source_video is not None:
            scene = EditedScene(req.source_video, width, height, fps, total)
        elif req.image_path is not None:
            scene = _KenBurns(req.image_path, width, height, total, rng)
        else:
            scene = _ColourField(width, height, fps, rng)
        references = References(req.reference_images, width, height)
        label = _label_sprite(width, height)
        caption = _caption_sprite(req.prompt, width, height, image=req.image_path is not None)
        fade_frames = max(1, fps // 2)
        motion = np.array([scene.motion(i) for i in range(total)], dtype=np.float64)
        sound = soundtrack(req.prompt, motion, fps)

        pacer = _Pacer(self._settings.sandbox_delay, self._sleep)
        every = max(1, total // 100)
        try:
            with VideoWriter(
                req.output_path, width=width, height=height, fps=fps, audio_rate=SOUND_RATE
            ) as writer:
                writer.write_audio(sound)  # drained in step with the frames
                for i in range(total):
                    if i == fail_at:
                        raise EngineError("Sandbox engine: simulated generation failure")
                    frame = scene.frame(i)
                    references.draw(frame)
                    if caption is not None:
                        # Image-to-video keeps its first frame clean; the caption fades in.
                        opacity = min(1.0, i / fade_frames) if scene.starts_on_image else 1.0
                        caption.sprite.blend(frame, caption.x, caption.y, opacity)
                    label.sprite.blend(frame, label.x, label.y)
                    writer.write(frame)
                    done = i + 1
                    if done % every == 0 or done == total:
                        pct = _GENERATING_SHARE * done / total
                        progress(Stage.GENERATING, pct)
                        pacer.advance(done / total, partial(progress, Stage.GENERATING, pct))
                progress(Stage.ENCODING, _GENERATING_SHARE)
        except VideoEncodeError as exc:
            raise EngineError("Sandbox engine: could not encode the video") from exc
        return EngineOutput(
            path=req.output_path, width=width, height=height, fps=float(fps), frames=total
        )

    @classmethod
    def check(cls, *, params: Mapping[str, object], settings: Settings) -> Capabilities:  # noqa: ARG003
        return Capabilities(extend=True, edit=True, references=True)

    def close(self) -> None:
        """Nothing to release: the sandbox holds no model."""

    def _geometry(self, req: GenerationRequest) -> tuple[int, int, int]:
        if req.width <= 0 or req.height <= 0:
            raise EngineError(f"Sandbox engine: invalid size {req.width}x{req.height}")
        if req.duration_s <= 0:
            raise EngineError(f"Sandbox engine: invalid duration {req.duration_s}")
        fps = _fps_param(req.params, default=self._fps)
        width, height = req.width, req.height
        if self._settings.sandbox_profile == "tiny":
            scale = _TINY_LONG_SIDE / max(width, height)
            width, height, fps = round(width * scale), round(height * scale), _TINY_FPS
        # yuv420p needs even sides.
        return max(2, width - width % 2), max(2, height - height % 2), fps


def _fps_param(params: Mapping[str, object], *, default: int) -> int:
    value = params.get("fps", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 60:
        raise EngineConfigError("Sandbox engine: params.fps must be an integer from 1 to 60")
    return value


class _Pacer:
    """Spreads ``total`` seconds of simulated model time over a run, in short slices."""

    def __init__(self, total: float, sleep: Callable[[float], None]) -> None:
        self._total = total
        self._sleep = sleep
        self._slept = 0.0

    def advance(self, fraction: float, report: Callable[[], None]) -> None:
        owed = self._total * fraction - self._slept
        while owed > 1e-9:
            step = min(owed, _SLEEP_SLICE)
            self._sleep(step)
            self._slept += step
            owed -= step
            report()


# --- pictures ------------------------------------------------------------------------


class _Scene(Protocol):
    starts_on_image: bool

    def frame(self, index: int) -> RGBFrame:
        """A fresh, writable ``height x width x 3`` uint8 frame."""
        ...

    def motion(self, index: int) -> tuple[float, float]:
        """Where the moving thing is at frame ``index``: ``(x, y)``, each 0..1; for the sound."""
        ...


class _ColourField:
    """A periodic colour field drifting diagonally, with a disc bouncing over it."""

    starts_on_image = False

    def __init__(self, width: int, height: int, fps: int, rng: random.Random) -> None:
        self._width, self._height, self._fps = width, height, fps
        period = max(16, max(width, height) * 2 // 3)
        self._period = period
        ys = np.arange(height + period, dtype=np.float32)[:, None]
        xs = np.arange(width + period, dtype=np.float32)[None, :]
        k = 2 * math.pi / period
        waves = [(1, 0), (0, 1), (1, 1), (1, -1), (2, 1), (1, 2)]
        channels: list[RGBFrame] = []
        for _ in range(3):
            (a, b), phase = rng.choice(waves), rng.uniform(0, 2 * math.pi)
            channels.append((127.5 + 100 * np.sin(k * (a * xs + b * ys) + phase)).astype(np.uint8))
        self._canvas = np.stack(channels, axis=-1)
        # Drift one period every 6 s across and every 9 s down.
        self._velocity = (period / (6 * fps), period / (9 * fps))
        self._disc = _disc_sprite(max(4, min(width, height) // 5), rng)
        self._phase = rng.uniform(0, 2 * math.pi)

    def frame(self, index: int) -> RGBFrame:
        dx = round(index * self._velocity[0]) % self._period
        dy = round(index * self._velocity[1]) % self._period
        frame = self._canvas[dy : dy + self._height, dx : dx + self._width].copy()
        size = self._disc.width
        x, y = self.motion(index)
        self._disc.blend(frame, round((self._width - size) * x), round((self._height - size) * y))
        return frame

    def motion(self, index: int) -> tuple[float, float]:
        t = index / self._fps
        x = 0.5 + 0.5 * math.sin(2 * math.pi * t / 3.1 + self._phase)
        y = 0.5 + 0.5 * math.sin(2 * math.pi * t / 4.3 + 1.0)
        return x, y


class _KenBurns:
    """The start image, then a slow eased zoom towards a random point of it."""

    starts_on_image = True

    def __init__(
        self, image_path: Path, width: int, height: int, total: int, rng: random.Random
    ) -> None:
        try:
            with Image.open(image_path) as image:
                source = image.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise EngineError("Sandbox engine: could not read the start image") from exc
        # Cover-fit at the final zoom, so the most zoomed-in frame is still 1:1 pixels.
        size = (round(width * _KEN_BURNS_ZOOM), round(height * _KEN_BURNS_ZOOM))
        self._big = ImageOps.fit(source, size, Image.Resampling.LANCZOS)
        self._size = (width, height)
        self._last = max(1, total - 1)
        self._towards = (rng.uniform(-1, 1), rng.uniform(-1, 1))

    def motion(self, index: int) -> tuple[float, float]:
        ease = self._ease(index)
        return 0.5 + 0.5 * self._towards[0] * ease, 0.5 + 0.5 * self._towards[1] * ease

    def _ease(self, index: int) -> float:
        p = index / self._last
        return p * p * (3 - 2 * p)

    def frame(self, index: int) -> RGBFrame:
        ease = self._ease(index)
        zoom = 1 + (_KEN_BURNS_ZOOM - 1) * ease
        big_w, big_h = self._big.size
        crop_w, crop_h = big_w / zoom, big_h / zoom
        cx = big_w / 2 + self._towards[0] * (big_w - crop_w) / 2
        cy = big_h / 2 + self._towards[1] * (big_h - crop_h) / 2
        box = (cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2)
        return np.array(self._big.resize(self._size, Image.Resampling.BILINEAR, box=box))


# --- overlays ------------------------------------------------------------------------


class _Sprite:
    """A premultiplied RGBA image, blended onto frames with integer numpy arithmetic."""

    def __init__(self, rgba: npt.NDArray[np.uint8]) -> None:
        alpha = rgba[..., 3:].astype(np.uint16)
        self._premult = rgba[..., :3].astype(np.uint16) * alpha
        self._inverse = 255 - alpha
        self.height, self.width = rgba.shape[:2]

    def blend(self, frame: RGBFrame, x: int, y: int, opacity: float = 1.0) -> None:
        if opacity <= 0:
            return
        premult, inverse = self._premult, self._inverse
        if opacity < 1:
            premult = (premult * opacity).astype(np.uint16)
            inverse = (255 - (255 - inverse) * opacity).astype(np.uint16)
        region = frame[y : y + self.height, x : x + self.width]
        acc = region.astype(np.uint16)
        acc *= inverse
        acc += premult
        # Exact round(acc / 255) for acc <= 255 * 255, without leaving uint16.
        acc += 128
        acc += acc >> 8
        acc >>= 8
        region[...] = acc


@dataclass(frozen=True, slots=True)
class _Placed:
    sprite: _Sprite
    x: int
    y: int


def _disc_sprite(size: int, rng: random.Random) -> _Sprite:
    r = size / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    coverage = np.clip(r - np.hypot(xx - r, yy - r), 0, 1)  # anti-aliased edge
    rgba = np.empty((size, size, 4), dtype=np.uint8)
    rgba[..., :3] = [rng.randint(200, 255), rng.randint(200, 255), rng.randint(120, 255)]
    rgba[..., 3] = (coverage * 230).astype(np.uint8)
    return _Sprite(rgba)


def _font(size: int) -> _Font:
    return ImageFont.load_default(size=max(6, size))


def _label_font_size(width: int, height: int) -> int:
    return max(6, round(min(width, height) * 0.035))


def _label_bar_height(width: int, height: int) -> int:
    return min(height, round(_label_font_size(width, height) * 1.7))


def _label_sprite(width: int, height: int) -> _Placed:
    """An opaque bar across the bottom with the label, sized to fit the width."""
    size = _label_font_size(width, height)
    natural = _text_width(LABEL, _font(size))
    if natural > width * 0.92:
        size = max(6, int(size * width * 0.92 / natural))
    font = _font(size)
    bar_h = _label_bar_height(width, height)
    bar = Image.new("RGBA", (width, bar_h), (16, 16, 16, 255))
    draw = ImageDraw.Draw(bar)
    x = (width - _text_width(LABEL, font)) / 2
    _draw_text(draw, (x, (bar_h - size) / 2), LABEL, font, (255, 214, 0, 255))
    return _Placed(_Sprite(np.asarray(bar)), 0, height - bar_h)


def _caption_sprite(prompt: str, width: int, height: int, *, image: bool) -> _Placed | None:
    """The wrapped prompt on a translucent box: big near the top, or a small bottom caption."""
    if not prompt.strip():
        return None
    short = min(width, height)
    size = max(6, round(short * (0.04 if image else 0.055)))
    font = _font(size)
    pad = max(2, size // 2)
    lines = _wrap(prompt, font, width * 0.86 - 2 * pad, max_lines=3 if image else 6)
    line_h = round(size * 1.25)
    box_w = min(width, math.ceil(max(_text_width(line, font) for line in lines)) + 2 * pad)
    box_h = min(height, line_h * len(lines) + 2 * pad)
    box = Image.new("RGBA", (box_w, box_h), (0, 0, 0, 135))
    draw = ImageDraw.Draw(box)
    for n, line in enumerate(lines):
        _draw_text(draw, (pad, pad + n * line_h), line, font, (255, 255, 255, 255))
    y = height - _label_bar_height(width, height) - box_h - pad if image else round(height * 0.12)
    return _Placed(_Sprite(np.asarray(box)), (width - box_w) // 2, max(0, min(y, height - box_h)))


def _wrap(text: str, font: _Font, max_width: float, *, max_lines: int) -> list[str]:
    """Greedy word wrap; over-long words are split; overflow ends in an ellipsis.

    Linear in the text shown: layout stops one line past ``max_lines``, and every string
    measured is at most about one line long, so a prompt of any length (one 4,000-character
    word included) lays out in milliseconds.
    """
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            if len(lines) > max_lines:
                break
            candidate = f"{line} {word}" if line else word
            if _text_width(candidate, font) <= max_width:  # once per word: linear
                line = candidate
                continue
            if line:
                lines.append(line)
            while len(word) > 1 and len(lines) <= max_lines:
                cut = _fits(word, font, max_width)
                if cut >= len(word):
                    break
                lines.append(word[: max(1, cut)])
                word = word[max(1, cut) :]
            line = word
        lines.append(line)
        if len(lines) > max_lines:
            break
    lines = [line for line in lines if line] or [""]
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and _text_width(last + "…", font) > max_width:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], last.rstrip() + "…"]
    return lines


def _fits(text: str, font: _Font, max_width: float) -> int:
    """How many leading characters of ``text`` fit in ``max_width`` (``len(text)`` if all do).

    Estimated from per-character advances, then corrected by exact measurement of a prefix
    about one line long: the cost grows with the width, not with the length of ``text``.
    """
    total, n = 0.0, 0
    while n < len(text):
        total += _text_width(text[n], font)
        if total > max_width:
            break
        n += 1
    while n > 0 and _text_width(text[:n], font) > max_width:
        n -= 1  # kerning made the prefix wider than the sum of its characters
    while n < len(text) and _text_width(text[: n + 1], font) <= max_width:
        n += 1
    return n


# Pillow's bundled font has no dashes beyond "-", so "—" is drawn as a rule.
_DASH: Final = "—"


def _text_width(text: str, font: _Font) -> float:
    parts = text.split(_DASH)
    dash = font.getlength("M")
    return sum(font.getlength(part) for part in parts) + dash * (len(parts) - 1)


def _draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    font: _Font,
    fill: tuple[int, int, int, int],
) -> None:
    x, y = xy
    dash = font.getlength("M")
    _, top, _, bottom = font.getbbox("x")
    thickness = max(1, round(dash / 10))
    mid = y + (top + bottom) / 2
    for n, part in enumerate(text.split(_DASH)):
        if n:
            inset = dash * 0.12
            draw.rectangle(
                (x + inset, mid - thickness / 2, x + dash - inset, mid + thickness / 2), fill=fill
            )
            x += dash
        draw.text((x, y), part, font=font, fill=fill)
        x += font.getlength(part)
