"""LTX-Video extensions and edits through ``LTXConditionPipeline``, on tiny random-weight
folders: the 0.9.0 design (``tiny_models["ltx"]``) and the 0.9.5 one (``tiny_ltx095``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reel.config import Settings
from reel.engines.base import EngineConfigError
from reel.engines.diffusers.base import DiffusersEngine
from reel.engines.diffusers.ltx_ops import edit_schedule
from reel.engines.registry import check_engine
from reel.media.video import encode_frames, probe, read_audio
from reel.service.extensions import ENGINE_OPERATIONS
from tests.engines.diffusers.conftest import MakeEngine
from tests.engines.diffusers.test_ltx2_ops import (
    assert_edits_follow_their_prompts,
    edit,
    extension,
    source_video,
)
from tests.engines.diffusers.tiny import PipelineSpy, grey_levels, require_gpu_extra

require_gpu_extra()
pytestmark = pytest.mark.gpu


def engine(make_engine: MakeEngine, model_dir: Path, **params: object) -> DiffusersEngine:
    """64x32 at 2 fps, passes of at most 9 frames (4 s at 2 fps takes two); closed after the
    test."""
    return make_engine("ltx", model_dir, segment_frames=9, **params)


def test_0_9_5_extends_on_the_source_s_last_frames(
    make_engine: MakeEngine, tiny_ltx095: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import LTXConditionPipeline, LTXImageToVideoPipeline

    cond = PipelineSpy(monkeypatch, LTXConditionPipeline, number=True)
    i2v = PipelineSpy(monkeypatch, LTXImageToVideoPipeline)
    source = source_video(tmp_path, 6, fps=2)
    ltx = engine(make_engine, tiny_ltx095)
    out = ltx.generate(extension(tmp_path, source, 4.0), lambda stage, pct: None)

    assert not i2v.calls and len(cond.calls) == 2
    (lead,) = cond.calls[0]["conditions"]
    # The source's last 5 frames (one latent frame past the first on the 4x temporal grid).
    assert lead.frame_index == 0 and lead.strength == 1.0 and len(lead.video) == 5
    levels = [float(np.asarray(image).mean()) for image in lead.video]
    assert levels == pytest.approx([10 * i for i in range(1, 6)], abs=4)
    (previous,) = cond.calls[1]["conditions"]  # the second pass continues the first's end
    assert [round(float(np.asarray(i).mean()) / 8) for i in previous.video] == list(range(4, 9))
    # 8 frames (4 s): the first pass's rendered frames 5..8, then the second's 5..8.
    assert out.frames == 8 and grey_levels(out.path) == [5, 6, 7, 8, 5, 6, 7, 8]
    info = probe(out.path)
    assert (info.frames, info.fps, info.has_audio) == (8, 2.0, False)


def test_earlier_models_extend_from_the_last_frame(
    make_engine: MakeEngine,
    tiny_models: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from diffusers import LTXConditionPipeline, LTXImageToVideoPipeline

    cond = PipelineSpy(monkeypatch, LTXConditionPipeline)
    i2v = PipelineSpy(monkeypatch, LTXImageToVideoPipeline)
    source = source_video(tmp_path, 6, fps=2)
    ltx = engine(make_engine, tiny_models["ltx"])
    out = ltx.generate(extension(tmp_path, source, 4.0), lambda stage, pct: None)
    assert not cond.calls and i2v.calls
    assert probe(out.path).frames == 8


@pytest.mark.parametrize("model", ["ltx", "ltx095"])
def test_an_edit_keeps_the_source_s_frames_size_rate_and_sound(
    make_engine: MakeEngine,
    model: str,
    tiny_models: dict[str, Path],
    tiny_ltx095: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from diffusers import LTXConditionPipeline

    cond = PipelineSpy(monkeypatch, LTXConditionPipeline)
    source = source_video(tmp_path, 12)  # 3 s at 4 fps, 80x48, with a tone
    folder = tiny_ltx095 if model == "ltx095" else tiny_models["ltx"]
    ltx = engine(make_engine, folder, steps=4, edit_strength=0.8)
    out = ltx.generate(edit(tmp_path, source), lambda stage, pct: None)

    info = probe(out.path)
    assert (info.frames, info.width, info.height, info.fps) == (12, 80, 48, 4.0)
    sound, kept = read_audio(out.path), read_audio(source)
    assert sound is not None and kept is not None
    assert sound.peak == pytest.approx(kept.peak, abs=0.05) and sound.peak > 0.2
    # Two windows; the 4-step schedule (1000, 987.5, 975, 725) reaches below 0.8 once.
    assert len(cond.calls) == 2
    for call in cond.calls:
        assert call["conditions"][0].strength == pytest.approx(0.2)
        assert call["denoise_strength"] == pytest.approx(1.5 / 4)
    tail = cond.calls[1]["conditions"][1]  # the second window continues the first's end
    assert tail.strength == 1.0 and len(tail.video) == (5 if model == "ltx095" else 1)


def test_an_edit_follows_its_prompt(
    make_engine: MakeEngine, tiny_ltx095: Path, tmp_path: Path
) -> None:
    assert_edits_follow_their_prompts(engine(make_engine, tiny_ltx095, edit_strength=1.0), tmp_path)


def test_the_edit_schedule() -> None:
    # LTX-Video's 40-step schedule: 6 steps below 0.5 (0.492 .. 0.094).
    assert edit_schedule(40, 0.5) == (0.5, 6)
    assert edit_schedule(40, 1.0) == (1.0, 40)
    # Below the last step (0.975 of 2): raised to it, one step.
    level, run = edit_schedule(2, 0.6)
    assert level == pytest.approx(0.975) and run == 1


def test_checks_and_the_api_table(
    tiny_models: dict[str, Path], tiny_ltx095: Path, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    for folder in (tiny_models["ltx"], tiny_ltx095):
        caps = check_engine("ltx", params={"model_dir": str(folder)}, settings=settings)
        able = {op for op, yes in [("extend", caps.extend), ("edit", caps.edit)] if yes}
        assert ENGINE_OPERATIONS["ltx"] == able and not caps.references
    for bad in (0, 1.01, "half"):
        with pytest.raises(EngineConfigError, match="edit_strength must be a number above 0"):
            check_engine(
                "ltx",
                params={"model_dir": str(tiny_ltx095), "edit_strength": bad},
                settings=settings,
            )


@pytest.fixture(scope="module")
def tiny_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reel.engines.diffusers.tiny import save_pipeline
    from reel.engines.diffusers.tiny_audio import build_stable_audio

    return save_pipeline(build_stable_audio(), tmp_path_factory.mktemp("audio") / "stable-audio")


def test_ambience_for_a_continued_segment_and_a_silent_source_s_edit(
    make_engine: MakeEngine, tiny_ltx095: Path, tiny_audio: Path, tmp_path: Path
) -> None:
    silent = tmp_path / "silent.mp4"
    encode_frames([np.full((48, 80, 3), 10 * i, np.uint8) for i in range(12)], silent, fps=4)
    voiced = source_video(tmp_path, 6, fps=2)
    ambient = {"model_dir": str(tiny_audio), "steps": 2}
    ltx = engine(make_engine, tiny_ltx095, ambience=ambient)
    segment = ltx.generate(extension(tmp_path, voiced, 4.0), lambda stage, pct: None)
    edited = ltx.generate(edit(tmp_path, silent), lambda stage, pct: None)
    for out, seconds in ((segment, 4.0), (edited, 3.0)):
        sound = read_audio(out.path)
        assert sound is not None and sound.duration_s == pytest.approx(seconds, abs=0.1)
        assert float(np.std(sound.samples)) > 1e-4
