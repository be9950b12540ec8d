"""Wan and LTX-Video engines on tiny random-weight models, loaded from disk the real way."""

from __future__ import annotations

import itertools
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from reel.config import Settings
from reel.engines.base import (
    Capabilities,
    Engine,
    EngineConfigError,
    EngineError,
    GenerationRequest,
    Interrupted,
)
from reel.engines.diffusers.base import DiffusersEngine
from reel.engines.registry import check_engine, load_engine
from reel.media.video import probe, sample_frames
from reel.types import Mode, Stage
from tests.engines.diffusers.tiny import FAST, require_gpu_extra

torch = require_gpu_extra()
pytestmark = pytest.mark.gpu


@dataclass
class Sink:
    stop_when: Callable[[Stage, float], bool] | None = None
    calls: list[tuple[Stage, float]] = field(default_factory=list[tuple[Stage, float]])

    def __call__(self, stage: Stage, percent: float) -> None:
        self.calls.append((stage, percent))
        if self.stop_when is not None and self.stop_when(stage, percent):
            raise Interrupted("canceled")


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


_OPEN: list[DiffusersEngine] = []


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    """Close every engine a test made, so no loaded pipeline outlives its test."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def engine(tmp_path: Path, kind: str, model: Path, **params: object) -> DiffusersEngine:
    e = load_engine(
        kind, params={"model_dir": str(model), **FAST, **params}, settings=settings(tmp_path)
    )
    assert isinstance(e, DiffusersEngine)
    _OPEN.append(e)
    return e


def request(tmp_path: Path, mode: Mode = Mode.TEXT_TO_VIDEO, **kw: Any) -> GenerationRequest:
    image = None
    if mode is Mode.IMAGE_TO_VIDEO:
        image = tmp_path / "start.png"
        Image.new("RGB", (90, 60), (220, 40, 40)).save(image)
    values: dict[str, Any] = {
        "task_id": "task_x",
        "prompt": "a cat on the beach at sunset",
        "mode": mode,
        "width": 1280,
        "height": 720,
        "duration_s": 10.0,
        "output_path": tmp_path / "out" / f"{mode}.mp4",
        "image_path": image,
        "seed": 3,
        **kw,
    }
    return GenerationRequest(**values)


@pytest.mark.parametrize("kind", ["wan", "ltx"])
@pytest.mark.parametrize("mode", [Mode.TEXT_TO_VIDEO, Mode.IMAGE_TO_VIDEO])
def test_renders_the_requested_duration(
    tmp_path: Path, tiny_models: dict[str, Path], kind: str, mode: Mode
) -> None:
    e = engine(tmp_path, kind, tiny_models[kind], segment_frames=21)
    assert isinstance(e, Engine) and e.name == kind
    req = request(tmp_path, mode)

    out = e.generate(req, Sink())

    info = probe(req.output_path)
    assert (out.frames, out.fps, out.width, out.height) == (20, 2.0, 64, 32)
    assert (info.frames, info.fps, info.width, info.height) == (20, 2.0, 64, 32)
    assert info.duration_s == pytest.approx(10.0)
    e.close()


@pytest.mark.parametrize("kind", ["wan", "ltx"])
def test_chained_10s_video_conditions_each_segment_on_the_last_frame(
    tmp_path: Path, tiny_models: dict[str, Path], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = engine(tmp_path, kind, tiny_models[kind], segment_frames=9, scale_to_tier=True)
    seen: list[tuple[int, np.ndarray | None, np.ndarray]] = []
    render = DiffusersEngine._render

    def spy(self: DiffusersEngine, job: Any, segment: Any, condition: Any) -> Any:
        frames = render(self, job, segment, condition)
        seen.append((segment.frames, condition, frames))
        return frames

    monkeypatch.setattr(DiffusersEngine, "_render", spy)
    sink = Sink()
    req = request(tmp_path)

    out = e.generate(req, sink)

    assert [n for n, _, _ in seen] == [9, 9, 5]  # 20 frames at 2 fps, 9 frames per pass
    assert seen[0][1] is None
    for (_, _, before), (_, condition, _) in itertools.pairwise(seen):
        np.testing.assert_array_equal(condition, before[-1])
    info = probe(req.output_path)
    assert (info.frames, info.width, info.height) == (20, 1280, 720)  # the tier's size
    assert info.duration_s == pytest.approx(10.0)
    assert out.frames == 20
    # Progress covers all three passes in one rising bar, through every stage.
    percents = [p for _, p in sink.calls]
    assert percents == sorted(percents) and percents[-1] > 90
    stages = [s for s, _ in sink.calls]
    assert stages.count(Stage.DECODING) == 3 and stages.count(Stage.ENCODING) == 3
    assert stages[0] == Stage.LOADING
    # The boundary frame is not repeated: no two consecutive output frames are identical.
    frames = list(sample_frames(req.output_path, list(range(20))))
    assert all(np.abs(a.astype(int) - b).sum() > 0 for a, b in itertools.pairwise(frames))


def test_image_to_video_starts_from_the_image(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    e = engine(tmp_path, "wan", tiny_models["wan"], segment_frames=21)
    images: list[Image.Image] = []
    i2v_call = type(e._pipelines(Sink()).i2v).__call__

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        images.append(kwargs["image"])
        return i2v_call(self, *args, **kwargs)

    monkeypatch.setattr(type(e._pipelines(Sink()).i2v), "__call__", spy)
    e.generate(request(tmp_path, Mode.IMAGE_TO_VIDEO), Sink())

    assert len(images) == 1 and images[0].size == (64, 32)  # cover-fitted, not stretched
    assert np.asarray(images[0])[16, 32].tolist() == [220, 40, 40]


def test_seed_policy(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    per_task = engine(tmp_path, "ltx", tiny_models["ltx"], segment_frames=21)
    fixed = engine(tmp_path, "ltx", tiny_models["ltx"], segment_frames=21, seed=11)

    def first_frame(e: DiffusersEngine, seed: int, name: str) -> np.ndarray:
        req = request(tmp_path, seed=seed, output_path=tmp_path / f"{name}.mp4")
        e.generate(req, Sink())
        return next(iter(sample_frames(req.output_path, [0])))

    a, b, c = (
        first_frame(per_task, 1, "a"),
        first_frame(per_task, 1, "b"),
        first_frame(per_task, 2, "c"),
    )
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(first_frame(fixed, 1, "d"), first_frame(fixed, 2, "e"))


def test_cancel_stops_at_the_next_step_without_decoding(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    e = engine(tmp_path, "wan", tiny_models["wan"], segment_frames=9, steps=4)
    pipes = e._pipelines(Sink())
    decodes: list[int] = []
    decode = pipes.t2v.vae.decode
    monkeypatch.setattr(
        pipes.t2v.vae, "decode", lambda *a, **k: (decodes.append(1), decode(*a, **k))[1]
    )
    generating = 0

    def stop(stage: Stage, percent: float) -> bool:
        nonlocal generating
        generating += stage == Stage.GENERATING and percent > 0
        return generating == 2  # after the second denoising step of the first pass

    sink = Sink(stop_when=stop)
    req = request(tmp_path)
    with pytest.raises(Interrupted):
        e.generate(req, sink)

    assert decodes == []  # the half-finished video was never decoded
    assert Stage.DECODING not in [s for s, _ in sink.calls]
    assert not req.output_path.exists()
    assert list(req.output_path.parent.iterdir()) == []  # no partial file left behind
    e.generate(req, Sink())  # and the engine still works
    assert probe(req.output_path).frames == 20


def test_out_of_memory_fails_the_job_and_the_engine_survives(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    e = engine(tmp_path, "wan", tiny_models["wan"], segment_frames=21)
    transformer = e._pipelines(Sink()).t2v.transformer
    forward = transformer.forward

    def oom(*args: Any, **kwargs: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(transformer, "forward", oom)
    with pytest.raises(EngineError, match="out of memory") as err:
        e.generate(request(tmp_path), Sink())
    assert not isinstance(err.value, EngineConfigError)
    monkeypatch.setattr(transformer, "forward", forward)
    assert e.generate(request(tmp_path), Sink()).frames == 20


def test_nan_output_fails_the_job(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    e = engine(tmp_path, "ltx", tiny_models["ltx"], segment_frames=21)
    transformer = e._pipelines(Sink()).t2v.transformer
    forward = transformer.forward

    def nan(*args: Any, **kwargs: Any) -> Any:
        out = forward(*args, **kwargs)
        out[0].fill_(float("nan"))
        return out

    monkeypatch.setattr(transformer, "forward", nan)
    req = request(tmp_path)
    with pytest.raises(EngineError, match="NaN"):
        e.generate(req, Sink())
    assert not req.output_path.exists()


def test_one_job_at_a_time_per_loaded_pipeline(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    e = engine(tmp_path, "wan", tiny_models["wan"], segment_frames=9)
    e._pipelines(Sink())
    order: list[str] = []
    lock = threading.Lock()

    def run(name: str) -> None:
        def sink(stage: Stage, percent: float) -> None:
            with lock:
                order.append(name)

        e.generate(request(tmp_path, output_path=tmp_path / f"{name}.mp4"), sink)

    threads = [threading.Thread(target=run, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    first = order[0]
    switches = sum(1 for x, y in itertools.pairwise(order) if x != y)
    assert switches == 1, order  # one job ran start to finish, then the other
    assert order.count(first) == len(order) // 2
    assert probe(tmp_path / "a.mp4").frames == probe(tmp_path / "b.mp4").frames == 20


# --- startup checks ------------------------------------------------------------------------


def test_capabilities(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    s = settings(tmp_path)
    # An image-to-video model extends: the worker joins a segment started on the last frame.
    # These models also edit (docs/models.md); what each Wan folder does is in
    # test_wan_capabilities.py.
    both = Capabilities(text_to_video=True, image_to_video=True, extend=True, edit=True)
    assert check_engine("wan", params={"model_dir": str(tiny_models["wan"])}, settings=s) == both
    assert check_engine("ltx", params={"model_dir": str(tiny_models["ltx"])}, settings=s) == both
    text_only = check_engine("wan", params={"model_dir": str(tiny_models["wan-t2v"])}, settings=s)
    assert text_only == Capabilities(text_to_video=True, image_to_video=False, edit=True)
    paired = check_engine(
        "wan",
        params={
            "model_dir": str(tiny_models["wan-t2v"]),
            "i2v_model_dir": str(tiny_models["wan-i2v"]),
        },
        settings=s,
    )
    assert paired == both


def test_text_only_model_refuses_image_to_video(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    e = engine(tmp_path, "wan", tiny_models["wan-t2v"], segment_frames=21)
    assert e.generate(request(tmp_path), Sink()).frames == 20
    with pytest.raises(EngineError, match="cannot do image-to-video"):
        e.generate(request(tmp_path, Mode.IMAGE_TO_VIDEO), Sink())


def test_t2v_model_with_a_separate_i2v_model(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """Wan 2.1 style: a text-to-video folder plus an image-to-video one (CLIP image encoder)."""
    e = engine(
        tmp_path,
        "wan",
        tiny_models["wan-t2v"],
        segment_frames=9,
        i2v_model_dir=str(tiny_models["wan-i2v"]),
    )
    pipes = e._pipelines(Sink())
    assert pipes.t2v is not None and pipes.i2v is not None
    assert pipes.t2v.transformer is not pipes.i2v.transformer and len(pipes.transformers) == 2
    assert pipes.i2v.text_encoder is pipes.t2v.text_encoder  # identical: loaded once
    out = e.generate(request(tmp_path), Sink())  # text-to-video pass, then image-to-video
    assert out.frames == 20 and probe(out.path).frames == 20
    i2v = request(tmp_path, Mode.IMAGE_TO_VIDEO, output_path=tmp_path / "i2v.mp4")
    assert e.generate(i2v, Sink()).frames == 20


def test_image_to_video_folder_alone_cannot_do_text_to_video(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    caps = check_engine(
        "wan", params={"model_dir": str(tiny_models["wan-i2v"])}, settings=settings(tmp_path)
    )
    assert caps == Capabilities(text_to_video=False, image_to_video=True, extend=True)
    e = engine(tmp_path, "wan", tiny_models["wan-i2v"], segment_frames=21)
    assert e.generate(request(tmp_path, Mode.IMAGE_TO_VIDEO), Sink()).frames == 20
    with pytest.raises(EngineError, match="cannot do text-to-video"):
        e.generate(request(tmp_path), Sink())


def test_incomplete_download_is_named_at_construction(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_models["wan"], broken)
    (broken / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    shutil.rmtree(broken / "tokenizer")
    with pytest.raises(EngineConfigError) as err:
        engine(tmp_path, "wan", broken)
    message = err.value.message
    assert "transformer/*.safetensors (weights)" in message and "tokenizer/" in message
    assert str(broken) in message


def test_wrong_pipeline_family_is_refused(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    with pytest.raises(EngineConfigError, match="holds a LTXPipeline pipeline; expected one of"):
        engine(tmp_path, "wan", tiny_models["ltx"])


def test_loads_bfloat16_weights_with_a_float32_vae(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    e = engine(tmp_path, "wan", tiny_models["wan"], segment_frames=9, dtype="bfloat16")
    pipes = e._pipelines(Sink())
    assert pipes.t2v.transformer.dtype == torch.bfloat16
    assert pipes.t2v.vae.dtype == torch.float32  # Wan's VAE default
    assert pipes.i2v.transformer is pipes.t2v.transformer  # shared, not copied or cast
    assert e.generate(request(tmp_path), Sink()).frames == 20
    assert pipes.t2v.transformer.dtype == torch.bfloat16


def test_speed_settings_apply(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    def first_frames(**params: object) -> np.ndarray:
        e = engine(tmp_path, "wan", tiny_models["wan"], segment_frames=21, **params)
        req = request(tmp_path, output_path=tmp_path / f"{len(_OPEN)}.mp4")
        assert e.generate(req, Sink()).frames == 20
        return np.stack(list(sample_frames(req.output_path, [0, 10, 19])))

    default = first_frames()
    # An output-preserving setting: PyTorch's own attention through diffusers' dispatcher.
    np.testing.assert_array_equal(first_frames(attention_backend="native"), default)
    # Memory settings and an opt-in cache still make the full video.
    first_frames(vae_tiling=True, vae_slicing=True, first_block_cache=0.5)


def test_unusable_attention_backend_is_a_config_error(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    e = engine(tmp_path, "ltx", tiny_models["ltx"], segment_frames=21, attention_backend="nope")
    with pytest.raises(EngineConfigError, match="attention backend 'nope' is not usable"):
        e.generate(request(tmp_path), Sink())


def test_chained_boundaries_are_smooth_in_the_encoded_video(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the engine's join, scaling and H.264 encoding, measured on decoded frames.

    Random weights make no coherent motion, so the passes here come from an ideal
    image-to-video stand-in (it starts exactly on its image and keeps panning); everything
    after the pass — dropping the repeated frame, trimming, encoding — is the engine's own.
    """
    x = np.arange(64)[None, :, None]
    y = np.arange(32)[:, None, None]
    texture = (127 + 90 * np.sin(2 * np.pi * x / 64 * 2 + y / 9 + np.array([0, 2, 4]))).astype(
        np.uint8
    )

    def ideal_pass(self: DiffusersEngine, job: Any, segment: Any, condition: Any) -> Any:
        start = texture if condition is None else condition
        return np.stack([np.roll(start, -2 * k, axis=1) for k in range(segment.frames)])

    monkeypatch.setattr(DiffusersEngine, "_render", ideal_pass)
    e = engine(tmp_path, "wan", tiny_models["wan"], segment_frames=9)
    req = request(tmp_path)
    e.generate(req, Sink())

    video = np.stack(list(sample_frames(req.output_path, list(range(20))))).astype(np.float32)
    steps = np.abs(np.diff(video, axis=0)).mean(axis=(1, 2, 3))
    boundaries = [9, 17]  # passes of 9, 9 and 5 frames keep 9, 8 and 3
    inside = np.median(np.delete(steps, [b - 1 for b in boundaries]))
    ratios = [float(steps[b - 1] / inside) for b in boundaries]
    assert all(0.5 <= r <= 1.5 for r in ratios), ratios


def test_flow_shift_and_guidance_reach_the_pipelines(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(EngineConfigError, match="guidance_2 is for two-expert models"):
        engine(tmp_path, "wan", tiny_models["wan"], guidance_2=2.5)
    e = engine(tmp_path, "wan", tiny_models["wan"], segment_frames=21, flow_shift=7.0, guidance=3.5)
    pipes = e._pipelines(Sink())
    assert pipes.t2v is not None and pipes.i2v is not None
    assert pipes.t2v.scheduler.config.flow_shift == 7.0
    assert pipes.i2v.scheduler is pipes.t2v.scheduler
    seen: list[dict[str, object]] = []
    call = type(pipes.t2v).__call__

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return call(self, *args, **kwargs)

    monkeypatch.setattr(type(pipes.t2v), "__call__", spy)
    e.generate(request(tmp_path), Sink())
    assert seen[0]["guidance_scale"] == 3.5 and seen[0]["num_inference_steps"] == 2
