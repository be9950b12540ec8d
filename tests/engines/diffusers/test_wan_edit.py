"""Edits on Wan (tiny random-weight models, loaded from disk the real way): a video-to-video
pass over the source, frame for frame, at its frame rate and size, with its sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reel.engines.base import EngineError, GenerationRequest, Interrupted
from reel.media.audio import Audio
from reel.media.video import encode_frames, probe, sample_frames
from reel.types import Stage
from tests.engines.diffusers.conftest import MakeEngine
from tests.engines.diffusers.test_engines import Sink, request
from tests.engines.diffusers.tiny import PipelineSpy, require_gpu_extra

require_gpu_extra()
pytestmark = pytest.mark.gpu


def source_video(
    path: Path, *, seconds: int = 3, fps: int = 4, shift: int = 0, sound: bool = True
) -> Path:
    """A 64x36 moving gradient (``shift`` moves it), with a tone unless ``sound`` is false."""
    xs = np.linspace(0, 255, 64, dtype=np.float32)[None, :, None]
    frames = [
        np.broadcast_to((xs + 20 * i + shift) % 256, (36, 64, 3)).astype(np.uint8).copy()
        for i in range(seconds * fps)
    ]
    audio = None
    if sound:
        tone = np.sin(np.linspace(0, 440 * 2 * np.pi * seconds, 48_000 * seconds))
        audio = Audio(np.repeat(tone[None, :].astype(np.float32) * 0.3, 2, axis=0), 48_000)
    encode_frames(frames, path, fps=fps, audio=audio)
    return path


def edit_request(tmp_path: Path, source: Path, name: str, **kw: object) -> GenerationRequest:
    (tmp_path / "out").mkdir(exist_ok=True)
    values: dict[str, object] = {
        "width": 64,
        "height": 36,
        "duration_s": 3.0,
        "operation": "edit",
        "source_video": source,
        "output_path": tmp_path / "out" / f"{name}.mp4",
        **kw,
    }
    return request(tmp_path, **values)


def frames(path: Path) -> np.ndarray:
    return np.stack(list(sample_frames(path, range(probe(path).frames)))).astype(np.int16)


@pytest.mark.parametrize("kind", ["wan-t2v", "wan"])  # Wan 2.1 T2V and Wan 2.2 TI2V-5B
def test_an_edit_keeps_the_sources_frames_rate_size_and_sound(
    tmp_path: Path,
    tiny_models: dict[str, Path],
    make_engine: MakeEngine,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    from diffusers import WanVideoToVideoPipeline

    spy = PipelineSpy(monkeypatch, WanVideoToVideoPipeline)
    source = source_video(tmp_path / "source.mp4")
    engine = make_engine("wan", tiny_models[kind], segment_frames=5)  # 12 frames: 4 windows
    sink = Sink()

    out = engine.generate(edit_request(tmp_path, source, kind), sink)

    info = probe(out.path)
    assert (info.frames, info.fps, info.width, info.height) == (12, 4.0, 64, 36)
    assert (out.frames, out.fps, out.width, out.height) == (12, 4.0, 64, 36)
    assert info.audio is not None and info.audio.duration_s == pytest.approx(3.0, abs=0.05)
    assert out.metadata["edit_windows"] == 4 and out.metadata["edit_strength"] == 0.7
    assert [(len(c["video"]), c["strength"]) for c in spy.calls] == [(5, 0.7)] * 4
    # Each window's frames are the source's, cover-fitted to the generation size (64x32).
    first = np.stack([np.asarray(f) for f in spy.calls[0]["video"]]).astype(np.int16)
    assert first.shape == (5, 32, 64, 3)
    assert np.abs(first[:, :, :, 0] - frames(source)[:5, 2:34, :, 0]).mean() < 6
    assert np.abs(frames(out.path) - frames(source)).mean() > 5  # not the source back
    stages = [stage for stage, _ in sink.calls]
    assert stages[0] is Stage.LOADING
    assert {Stage.GENERATING, Stage.DECODING, Stage.ENCODING} <= set(stages)
    percents = [p for _, p in sink.calls]
    assert percents == sorted(percents) and percents[-1] > 90


def test_an_edit_follows_its_prompt_seed_source_and_strength(
    tmp_path: Path, tiny_models: dict[str, Path], make_engine: MakeEngine
) -> None:
    source = source_video(tmp_path / "a.mp4")
    other = source_video(tmp_path / "b.mp4", shift=128)
    engine = make_engine("wan", tiny_models["wan"], steps=4)
    made = {
        name: frames(engine.generate(edit_request(tmp_path, src, name, **kw), Sink()).path)
        for name, src, kw in [
            ("base", source, {}),
            ("again", source, {}),
            ("prompt", source, {"prompt": "a dog in the city"}),
            ("seed", source, {"seed": 4}),
            ("source", other, {}),
        ]
    }

    def change(name: str) -> float:
        return float(np.abs(made["base"] - made[name]).mean())

    # The same edit again differs only by what the H.264 encoder does not reproduce exactly.
    noise = change("again")
    assert noise < 1.0
    for changed in ("prompt", "seed", "source"):
        assert change(changed) > noise + 1.5, changed
    # All 4 steps from pure noise, not the default's last 2 (0.7 x 4, rounded down).
    full = make_engine("wan", tiny_models["wan"], steps=4, edit_strength=1.0)
    out = full.generate(edit_request(tmp_path, source, "full"), Sink())
    assert out.metadata["edit_strength"] == 1.0
    assert float(np.abs(made["base"] - frames(out.path)).mean()) > noise + 1.5


def test_a_silent_source_gives_a_silent_edit(
    tmp_path: Path, tiny_models: dict[str, Path], make_engine: MakeEngine
) -> None:
    source = source_video(tmp_path / "silent.mp4", seconds=2, sound=False)
    engine = make_engine("wan", tiny_models["wan-t2v"])
    out = engine.generate(edit_request(tmp_path, source, "silent", duration_s=2.0), Sink())
    info = probe(out.path)
    assert info.frames == 8 and info.audio is None


def test_an_edit_stops_at_a_step_when_canceled(
    tmp_path: Path, tiny_models: dict[str, Path], make_engine: MakeEngine
) -> None:
    source = source_video(tmp_path / "source.mp4")
    engine = make_engine("wan", tiny_models["wan-t2v"], segment_frames=5)
    req = edit_request(tmp_path, source, "canceled")
    sink = Sink(stop_when=lambda stage, _: stage is Stage.DECODING)  # after the first window
    with pytest.raises(Interrupted):
        engine.generate(req, sink)
    assert not req.output_path.exists()
    assert [s for s, _ in sink.calls].count(Stage.ENCODING) == 0


def test_models_that_cannot_edit_and_bad_sources_fail_cleanly(
    tmp_path: Path, tiny_models: dict[str, Path], make_engine: MakeEngine
) -> None:
    source = source_video(tmp_path / "source.mp4", seconds=1)
    for kind in ("wan-i2v", "wan-vace"):
        engine = make_engine("wan", tiny_models[kind])
        with pytest.raises(EngineError, match="cannot edit videos"):
            engine.generate(edit_request(tmp_path, source, kind, duration_s=1.0), Sink())
    engine = make_engine("wan", tiny_models["wan-t2v"])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(EngineError, match="could not read the source video"):
        engine.generate(edit_request(tmp_path, broken, "broken"), Sink())
