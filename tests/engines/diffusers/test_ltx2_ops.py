"""LTX-2 extensions on the source's last frames and edits, on tiny random-weight pipelines.

Each runs through the engine's real loading path; a spy on the pipeline classes records what
each pass was conditioned on and numbers the frames it returned, so the written video shows
which rendered frames it kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reel.config import Settings
from reel.engines.base import EngineConfigError, GenerationRequest
from reel.engines.diffusers.base import DiffusersEngine
from reel.engines.diffusers.ltx2 import LTX2Engine
from reel.engines.registry import check_engine
from reel.media.audio import Audio
from reel.media.video import encode_frames, probe, sample_frames
from reel.service.extensions import ENGINE_OPERATIONS
from reel.types import Mode
from tests.engines.diffusers.conftest import MakeEngine
from tests.engines.diffusers.test_ltx2 import FAST, assert_video_with_sound, make_request
from tests.engines.diffusers.tiny import PipelineSpy, grey_levels, require_gpu_extra

require_gpu_extra()
pytestmark = pytest.mark.gpu


def source_video(
    tmp_path: Path, frames: int, *, fps: int = 4, size: tuple[int, int] = (80, 48)
) -> Path:
    """``frames`` (at most 25) flat grey frames, frame ``i`` at level ``10 i``, with a tone."""
    path = tmp_path / "source.mp4"
    w, h = size
    pictures = [np.full((h, w, 3), 10 * i, dtype=np.uint8) for i in range(frames)]
    n = round(frames / fps * 48_000)
    tone = np.sin(np.linspace(0, 2 * np.pi * 440 * frames / fps, n, dtype=np.float32)) * 0.3
    encode_frames(pictures, path, fps=fps, audio=Audio(np.stack([tone, tone]), 48_000))
    return path


def extension(tmp_path: Path, source: Path, seconds: float) -> GenerationRequest:
    last = tmp_path / "last.png"
    from PIL import Image

    frame = next(sample_frames(source, [probe(source).frames - 1]))
    Image.fromarray(frame).save(last)
    return make_request(
        tmp_path,
        mode=Mode.IMAGE_TO_VIDEO,
        image_path=last,
        duration_s=seconds,
        operation="extend",
        source_video=source,
        width=80,
        height=48,
    )


def edit(tmp_path: Path, source: Path, prompt: str = "a cat on the beach") -> GenerationRequest:
    info = probe(source)
    return make_request(
        tmp_path,
        prompt=prompt,
        duration_s=round(info.duration_s),
        operation="edit",
        source_video=source,
        width=info.width,
        height=info.height,
        output_path=tmp_path / f"edit-{prompt.replace(' ', '-')}.mp4",
    )


def test_an_extension_continues_the_source_s_last_frames(
    make_engine: MakeEngine,
    tiny_ltx2: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from diffusers import LTX2ConditionPipeline, LTX2ImageToVideoPipeline

    cond = PipelineSpy(monkeypatch, LTX2ConditionPipeline, number=True)
    i2v = PipelineSpy(monkeypatch, LTX2ImageToVideoPipeline)
    source = source_video(tmp_path, 12)  # 3 s at 4 fps
    ltx2 = make_engine("ltx2", tiny_ltx2["model"], **FAST)
    out = ltx2.generate(extension(tmp_path, source, 4.0), lambda stage, pct: None)

    assert not i2v.calls and len(cond.calls) == 1
    (condition,) = cond.calls[0]["conditions"]
    # One latent frame's worth past the first (8 + 1 frames): the source's frames 3..11,
    # fitted to the 64x64 generation size.
    assert condition.index == 0 and condition.strength == 1.0
    assert condition.frames.shape == (9, 64, 64, 3)
    levels = [float(frame.mean()) for frame in condition.frames]
    assert levels == pytest.approx([10 * i for i in range(3, 12)], abs=4)
    assert cond.calls[0]["num_frames"] == 25  # the 16 new frames and the 9 it continues
    # The segment: 4 s at 4 fps, the conditioning frames (rendered 0..8) not written again.
    assert out.frames == 16
    assert grey_levels(out.path) == list(range(9, 25))
    assert_video_with_sound(out.path, frames=16)


def test_an_edit_keeps_the_source_s_frames_size_and_rate_with_new_sound(
    make_engine: MakeEngine,
    tiny_ltx2: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from diffusers import LTX2ConditionPipeline

    cond = PipelineSpy(monkeypatch, LTX2ConditionPipeline, number=True)
    source = source_video(tmp_path, 24)  # 6 s at 4 fps: two windows of at most 17 frames
    ltx2 = make_engine("ltx2", tiny_ltx2["model"], **FAST, segment_frames=17, edit_strength=0.3)
    out = ltx2.generate(edit(tmp_path, source), lambda stage, pct: None)

    info = probe(out.path)
    assert (info.frames, info.width, info.height, info.fps) == (24, 80, 48, 4.0)
    assert (out.frames, out.width, out.height, out.fps) == (24, 80, 48, 4.0)
    assert_video_with_sound(out.path, frames=24)
    first, second = cond.calls
    (window,) = first["conditions"]
    assert window.strength == pytest.approx(0.7) and window.frames.shape == (17, 64, 64, 3)
    assert [round(float(f.mean()) / 10) for f in window.frames] == list(range(17))
    # The second window starts on the first one's last 9 edited frames, held fully, over the
    # source's frames 8..23 (the last one repeated to a valid count).
    window, previous = second["conditions"]
    assert window.strength == pytest.approx(0.7) and previous.strength == 1.0
    assert [round(float(f.mean()) / 10) for f in window.frames] == [*range(8, 24), 23]
    assert [round(float(f.mean()) / 8) for f in previous.frames] == list(range(8, 17))
    assert first["frame_rate"] == second["frame_rate"] == 4.0
    assert grey_levels(out.path) == [*range(17), *range(9, 16)]


def assert_edits_follow_their_prompts(engine: DiffusersEngine, tmp_path: Path) -> None:
    """Two edits of one 8-frame source with two prompts differ."""
    source = source_video(tmp_path, 8)
    outs = [
        engine.generate(edit(tmp_path, source, prompt), lambda stage, pct: None)
        for prompt in ("a cat on the beach", "a dog in the city at night")
    ]
    a, b = (np.stack(list(sample_frames(o.path, range(8)))).astype(np.float32) for o in outs)
    assert np.abs(a - b).mean() > 1.0


def test_an_edit_follows_its_prompt(
    make_engine: MakeEngine, tiny_ltx2: dict[str, Path], tmp_path: Path
) -> None:
    assert_edits_follow_their_prompts(make_engine("ltx2", tiny_ltx2["model"], **FAST), tmp_path)


def test_edit_strength_is_checked_at_start(tiny_ltx2: dict[str, Path], tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    ok = {"model_dir": str(tiny_ltx2["model"])}
    assert LTX2Engine.check(params={**ok, "edit_strength": 1}, settings=settings).edit
    for bad in (0, 1.5, -0.1, "strong", True):
        with pytest.raises(EngineConfigError, match="edit_strength must be a number above 0"):
            LTX2Engine.check(params={**ok, "edit_strength": bad}, settings=settings)


def test_the_api_table_is_what_ltx2_does(tiny_ltx2: dict[str, Path], tmp_path: Path) -> None:
    caps = check_engine(
        "ltx2",
        params={"model_dir": str(tiny_ltx2["model"]), **FAST},
        settings=Settings(data_dir=tmp_path / "data"),
    )
    able = {op for op, yes in [("extend", caps.extend), ("edit", caps.edit)] if yes}
    assert ENGINE_OPERATIONS["ltx2"] == able | ({"references"} if caps.references else set())
