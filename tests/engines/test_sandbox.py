"""The sandbox engine renders real, decodable videos; checked by decoding what it wrote."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from reel.config import Settings
from reel.engines.base import (
    Engine,
    EngineConfigError,
    EngineError,
    EngineOutput,
    GenerationRequest,
    Interrupted,
)
from reel.engines.sandbox import SandboxEngine
from reel.media.video import frame_at, probe, sample_frames
from reel.types import Mode, Stage

PROMPT = "A lighthouse on a cliff at dusk, waves crashing — slow aerial orbit"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path / "data", "sandbox_delay": 0.0}
    values.update(overrides)
    return Settings(**values)


def make_engine(
    tmp_path: Path, *, params: dict[str, object] | None = None, **settings: Any
) -> SandboxEngine:
    return SandboxEngine(params=params or {}, settings=make_settings(tmp_path, **settings))


def make_request(tmp_path: Path, **overrides: Any) -> GenerationRequest:
    values: dict[str, Any] = {
        "task_id": "task_1",
        "prompt": PROMPT,
        "mode": Mode.TEXT_TO_VIDEO,
        "width": 640,
        "height": 360,
        "duration_s": 2.0,
        "output_path": tmp_path / "out" / "video.mp4",
    }
    values.update(overrides)
    return GenerationRequest(**values)


@dataclass
class RecordingSink:
    """Records progress; raises :class:`Interrupted` once ``stop_when`` says so."""

    stop_when: Callable[[Stage, float, int], bool] | None = None
    calls: list[tuple[Stage, float]] = field(default_factory=list[tuple[Stage, float]])

    def __call__(self, stage: Stage, percent: float) -> None:
        self.calls.append((stage, percent))
        if self.stop_when is not None and self.stop_when(stage, percent, len(self.calls)):
            raise Interrupted("canceled")


def start_image(path: Path, size: tuple[int, int] = (400, 300)) -> Path:
    """A smooth picture with a few shapes, at a different aspect ratio from the output."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, 255 - (x + y) / 2], axis=-1).astype(np.uint8)
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    draw.ellipse((w * 0.3, h * 0.3, w * 0.6, h * 0.7), fill=(230, 30, 30))
    draw.rectangle((w * 0.7, h * 0.1, w * 0.9, h * 0.4), fill=(20, 20, 20))
    image.save(path)
    return path


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- the contract ---------------------------------------------------------------------


def test_is_an_engine(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    assert isinstance(engine, Engine)
    assert engine.name == "sandbox"
    engine.close()


def test_renders_the_requested_video(tmp_path: Path) -> None:
    req = make_request(tmp_path)
    sink = RecordingSink()

    out = make_engine(tmp_path, sandbox_fps=12).generate(req, sink)

    assert out == EngineOutput(path=req.output_path, width=640, height=360, fps=12.0, frames=24)
    info = probe(req.output_path)
    assert (info.width, info.height, info.frames, info.codec) == (640, 360, 24, "h264")
    assert info.fps == 12.0
    assert info.duration_s == pytest.approx(2.0)
    assert leftovers(req.output_path.parent) == ["video.mp4"]


def test_progress_rises_through_generating_then_encoding(tmp_path: Path) -> None:
    sink = RecordingSink()

    make_engine(tmp_path, sandbox_fps=24).generate(make_request(tmp_path, duration_s=4.0), sink)

    stages = [stage for stage, _ in sink.calls]
    percents = [pct for _, pct in sink.calls]
    assert stages[0] == Stage.GENERATING and percents[0] == 0
    assert stages[-1] == Stage.ENCODING
    assert set(stages[:-1]) == {Stage.GENERATING}
    assert percents == sorted(percents)
    assert all(0 <= p <= 100 for p in percents)
    assert len(sink.calls) >= 96 // 4  # at least every few of the 96 frames


def test_fps_comes_from_settings_and_params_override_it(tmp_path: Path) -> None:
    req = make_request(tmp_path, duration_s=1.5, width=64, height=64)

    assert make_engine(tmp_path, sandbox_fps=30).generate(req, RecordingSink()).frames == 45
    out = make_engine(tmp_path, params={"fps": 10}).generate(req, RecordingSink())

    assert (out.fps, out.frames) == (10.0, 15)
    assert probe(req.output_path).fps == 10.0


@pytest.mark.parametrize("fps", [0, 61, "24", 2.5, True])
def test_bad_fps_param_is_a_config_error(tmp_path: Path, fps: object) -> None:
    with pytest.raises(EngineConfigError):
        make_engine(tmp_path, params={"fps": fps})


def test_odd_sizes_are_rounded_down_to_even(tmp_path: Path) -> None:
    req = make_request(tmp_path, width=101, height=57, duration_s=0.5)

    out = make_engine(tmp_path, sandbox_fps=8).generate(req, RecordingSink())

    assert (out.width, out.height) == (100, 56)
    assert probe(req.output_path).width == 100


@pytest.mark.parametrize(
    ("size", "tiny"),
    [((1080, 1920), (36, 64)), ((1280, 720), (64, 36)), ((720, 720), (64, 64))],
)
def test_tiny_profile(tmp_path: Path, size: tuple[int, int], tiny: tuple[int, int]) -> None:
    req = make_request(tmp_path, width=size[0], height=size[1], duration_s=10.0)

    out = make_engine(tmp_path, sandbox_profile="tiny").generate(req, RecordingSink())

    assert (out.width, out.height, out.fps, out.frames) == (*tiny, 4.0, 40)
    assert out.duration_s == 10.0
    info = probe(req.output_path)
    assert (info.width, info.height, info.frames) == (*tiny, 40)
    assert info.duration_s == pytest.approx(10.0)


# --- what the frames show -------------------------------------------------------------


def test_frames_move(tmp_path: Path) -> None:
    req = make_request(tmp_path)
    make_engine(tmp_path, sandbox_fps=12).generate(req, RecordingSink())

    frames = list(sample_frames(req.output_path, [0, 1, 12, 23]))

    for a, b in pairwise(frames):
        assert mean_abs_diff(a, b) > 1.0
    assert mean_abs_diff(frames[0], frames[-1]) > 10.0


def label_band(frame: np.ndarray) -> np.ndarray:
    """Rows well inside the label bar at the bottom of a 640x360 frame (bar: 22 px)."""
    return frame[-18:-4]


def assert_label_visible(frame: np.ndarray) -> None:
    band = label_band(frame).astype(np.int16)
    r, g, b = band[..., 0], band[..., 1], band[..., 2]
    assert np.median(band) < 40  # a dark bar ...
    yellow = (r > 170) & (g > 140) & (b < 110)
    assert yellow.sum() > 150  # ... with yellow lettering ...
    columns = np.flatnonzero(yellow.any(axis=0))
    assert columns.min() > 100 and columns.max() < 540  # ... centred, a word-wide line


def test_label_is_on_every_frame_and_static(tmp_path: Path) -> None:
    req = make_request(tmp_path)
    make_engine(tmp_path, sandbox_fps=12).generate(req, RecordingSink())

    frames = list(sample_frames(req.output_path, [0, 7, 15, 23]))

    for frame in frames:
        assert_label_visible(frame)
        assert mean_abs_diff(label_band(frame), label_band(frames[0])) < 2.0


def test_prompt_is_drawn(tmp_path: Path) -> None:
    with_prompt, without = tmp_path / "a.mp4", tmp_path / "b.mp4"
    engine = make_engine(tmp_path, sandbox_fps=8)
    engine.generate(make_request(tmp_path, output_path=with_prompt), RecordingSink())
    engine.generate(make_request(tmp_path, output_path=without, prompt=""), RecordingSink())

    a, b = frame_at(with_prompt, 0), frame_at(without, 0)

    top = slice(int(360 * 0.12), int(360 * 0.4))
    assert mean_abs_diff(a[top], b[top]) > 15  # the caption box and its text
    assert mean_abs_diff(a[-60:], b[-60:]) < 2  # same background and label elsewhere


def test_same_task_and_seed_render_the_same_video(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, sandbox_fps=8)
    paths = [tmp_path / f"{n}.mp4" for n in range(3)]
    engine.generate(make_request(tmp_path, output_path=paths[0], seed=7), RecordingSink())
    engine.generate(make_request(tmp_path, output_path=paths[1], seed=7), RecordingSink())
    engine.generate(make_request(tmp_path, output_path=paths[2], seed=8), RecordingSink())

    first = [frame_at(p, 1.0) for p in paths]

    assert mean_abs_diff(first[0], first[1]) == 0
    assert mean_abs_diff(first[0], first[2]) > 5


def test_long_and_odd_prompts_render(tmp_path: Path) -> None:
    prompt = ("word " * 600) + "x" * 300 + "\n\nSecond paragraph — with a dash\t and ünïcödé 🙂"
    req = make_request(tmp_path, prompt=prompt, duration_s=0.5)

    out = make_engine(tmp_path, sandbox_fps=8).generate(req, RecordingSink())

    assert probe(req.output_path).frames == out.frames == 4


# --- image to video -------------------------------------------------------------------


def test_image_to_video_starts_on_the_image_then_pans(tmp_path: Path) -> None:
    image = start_image(tmp_path / "start.png")
    req = make_request(tmp_path, mode=Mode.IMAGE_TO_VIDEO, image_path=image, duration_s=3.0)

    out = make_engine(tmp_path, sandbox_fps=12).generate(req, RecordingSink())

    assert (out.width, out.height, out.frames) == (640, 360, 36)
    with Image.open(image) as src:
        expected = np.asarray(ImageOps.fit(src.convert("RGB"), (640, 360)))
    first, middle, last = sample_frames(req.output_path, [0, 18, 35])
    above_label = slice(0, 360 - 22)
    assert mean_abs_diff(first[above_label], expected[above_label]) < 4
    assert mean_abs_diff(first, expected) < 12
    assert mean_abs_diff(first, last) > 5  # the slow zoom and pan moved it
    assert mean_abs_diff(middle, last) > 1
    for frame in (first, middle, last):
        assert_label_visible(frame)


def test_image_to_video_in_the_tiny_profile(tmp_path: Path) -> None:
    image = start_image(tmp_path / "start.png", size=(300, 500))
    req = make_request(tmp_path, mode=Mode.IMAGE_TO_VIDEO, image_path=image, width=720, height=1280)

    out = make_engine(tmp_path, sandbox_profile="tiny").generate(req, RecordingSink())

    assert (out.width, out.height, out.frames) == (36, 64, 8)
    assert probe(req.output_path).frames == 8


def test_unreadable_start_image_is_an_engine_error(tmp_path: Path) -> None:
    image = tmp_path / "start.png"
    image.write_bytes(b"not a png")
    req = make_request(tmp_path, mode=Mode.IMAGE_TO_VIDEO, image_path=image)

    with pytest.raises(EngineError, match="start image"):
        make_engine(tmp_path).generate(req, RecordingSink())
    assert leftovers(req.output_path.parent) == []


# --- failure, interruption and pacing -------------------------------------------------


def test_fail_rate_one_always_fails_partway_and_leaves_nothing(tmp_path: Path) -> None:
    req = make_request(tmp_path)
    sink = RecordingSink()

    with pytest.raises(EngineError) as caught:
        make_engine(tmp_path, sandbox_fps=12, sandbox_fail_rate=1.0).generate(req, sink)

    assert caught.value.message == "Sandbox engine: simulated generation failure"
    assert 0 < max(pct for _, pct in sink.calls) < 90
    assert not req.output_path.exists()
    assert leftovers(req.output_path.parent) == []


def test_fail_rate_is_a_deterministic_chance_per_task(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, sandbox_profile="tiny", sandbox_fail_rate=0.5)

    def fails(task_id: str) -> bool:
        req = make_request(tmp_path, task_id=task_id, duration_s=1.0)
        try:
            engine.generate(req, RecordingSink())
        except EngineError:
            return True
        return False

    outcomes = [fails(f"task_{n}") for n in range(24)]

    assert 3 <= sum(outcomes) <= 21
    assert [fails(f"task_{n}") for n in range(24)] == outcomes


def test_interrupted_while_generating_propagates_and_leaves_nothing(tmp_path: Path) -> None:
    req = make_request(tmp_path)
    sink = RecordingSink(stop_when=lambda stage, pct, n: pct >= 30)

    with pytest.raises(Interrupted):
        make_engine(tmp_path, sandbox_fps=12).generate(req, sink)

    assert sink.calls[-1][1] < 50  # stopped soon after asking
    assert leftovers(req.output_path.parent) == []


def test_interrupted_while_encoding_leaves_nothing(tmp_path: Path) -> None:
    req = make_request(tmp_path)
    sink = RecordingSink(stop_when=lambda stage, pct, n: stage == Stage.ENCODING)

    with pytest.raises(Interrupted):
        make_engine(tmp_path, sandbox_fps=12).generate(req, sink)

    assert leftovers(req.output_path.parent) == []


def test_delay_is_spread_over_the_run_in_short_slices(tmp_path: Path) -> None:
    slept: list[float] = []
    engine = SandboxEngine(
        params={}, settings=make_settings(tmp_path, sandbox_delay=3.0), sleep=slept.append
    )
    sink = RecordingSink()

    engine.generate(make_request(tmp_path, duration_s=1.0, width=64, height=64), sink)

    assert sum(slept) == pytest.approx(3.0)
    assert max(slept) <= 0.25
    assert len(sink.calls) > len(slept)  # a progress check after every slice
    percents = [pct for _, pct in sink.calls]
    assert percents == sorted(percents)


def test_interrupted_during_a_long_delay_stops_promptly(tmp_path: Path) -> None:
    slept: list[float] = []
    engine = SandboxEngine(
        params={}, settings=make_settings(tmp_path, sandbox_delay=600.0), sleep=slept.append
    )
    req = make_request(tmp_path, duration_s=1.0, width=64, height=64)
    sink = RecordingSink(stop_when=lambda stage, pct, n: n >= 5)

    with pytest.raises(Interrupted):
        engine.generate(req, sink)

    assert len(slept) <= 5
    assert leftovers(req.output_path.parent) == []


def test_real_delay_takes_real_time(tmp_path: Path) -> None:
    req = make_request(tmp_path, duration_s=0.5, width=64, height=64)
    engine = make_engine(tmp_path, sandbox_profile="tiny", sandbox_delay=0.3)

    started = time.monotonic()
    engine.generate(req, RecordingSink())

    assert time.monotonic() - started >= 0.3


# --- full size ------------------------------------------------------------------------


def test_720p_image_to_video(tmp_path: Path) -> None:
    image = start_image(tmp_path / "start.png", size=(1024, 768))
    req = make_request(
        tmp_path,
        mode=Mode.IMAGE_TO_VIDEO,
        image_path=image,
        width=1280,
        height=720,
        duration_s=4.0,
    )

    out = make_engine(tmp_path).generate(req, RecordingSink())

    info = probe(req.output_path)
    assert (info.width, info.height, info.frames, info.codec) == (1280, 720, 96, "h264")
    assert out.frames == 96 and info.duration_s == pytest.approx(4.0)


@pytest.mark.slow
def test_full_size_portrait(tmp_path: Path) -> None:
    # The longest full-size video (15 s, 360 frames) with REEL_TEST_LONG=1; 4 s otherwise
    # (the 15 s length itself is covered at small sizes).
    seconds = 15 if os.environ.get("REEL_TEST_LONG") else 4
    req = make_request(tmp_path, width=1080, height=1920, duration_s=float(seconds))

    out = make_engine(tmp_path).generate(req, RecordingSink())

    frames = 24 * seconds
    assert (out.width, out.height, out.fps, out.frames) == (1080, 1920, 24.0, frames)
    info = probe(req.output_path)
    assert (info.width, info.height, info.frames, info.codec) == (1080, 1920, frames, "h264")
    assert info.fps == 24.0
    assert info.duration_s == pytest.approx(seconds)
