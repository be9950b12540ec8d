"""Wan VACE models (tiny random weights, loaded from disk the real way): text- and
image-to-video from one pipeline, chained passes, and characters' reference frames.

A tiny random VACE model barely responds to *what* a reference shows (its control branch's
effect is far below what H.264 keeps), only to there being references; so the engine tests check
that references reach every pass and change the video, and the inputs built for VACE are
checked on their own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reel.engines.base import EngineError, GenerationRequest
from reel.engines.diffusers.wan_vace import vace_conditioning
from reel.media.video import probe, sample_frames
from reel.types import Mode
from tests.engines.diffusers.conftest import MakeEngine
from tests.engines.diffusers.test_engines import Sink, request
from tests.engines.diffusers.tiny import PipelineSpy, require_gpu_extra

require_gpu_extra()
pytestmark = pytest.mark.gpu


def png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 60)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def made(tmp_path: Path, engine: object, name: str, **kw: object) -> np.ndarray:
    """The frames of one request's video (64x32 at 2 fps, 4 s unless ``kw`` says)."""
    (tmp_path / "out").mkdir(exist_ok=True)
    values: dict[str, object] = {
        "width": 64,
        "height": 32,
        "duration_s": 4.0,
        "output_path": tmp_path / "out" / f"{name}.mp4",
        **kw,
    }
    req: GenerationRequest = request(tmp_path, **values)
    out = engine.generate(req, Sink())  # type: ignore[attr-defined]
    info = probe(out.path)
    assert (info.frames, info.width, info.height) == (out.frames, 64, 32)
    return np.stack(list(sample_frames(out.path, range(info.frames)))).astype(np.int16)


def change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def test_vace_makes_text_and_image_to_video_in_chained_passes(
    tmp_path: Path, tiny_models: dict[str, Path], make_engine: MakeEngine
) -> None:
    engine = make_engine("wan", tiny_models["wan-vace"], segment_frames=9)
    text = made(tmp_path, engine, "text", duration_s=10.0)  # 20 frames: three passes
    assert text.shape[0] == 20
    black, white = png(tmp_path / "black.png", (0, 0, 0)), png(tmp_path / "white.png", (255,) * 3)
    dark = made(tmp_path, engine, "dark", mode=Mode.IMAGE_TO_VIDEO, image_path=black)
    again = made(tmp_path, engine, "again", mode=Mode.IMAGE_TO_VIDEO, image_path=black)
    light = made(tmp_path, engine, "light", mode=Mode.IMAGE_TO_VIDEO, image_path=white)
    assert dark.shape[0] == light.shape[0] == 8
    noise = change(dark, again)  # what the H.264 encoder does not reproduce exactly
    assert change(dark, light) > noise + 1.0  # the start frame reaches the model


def test_reference_frames_change_the_video_and_keep_its_length(
    tmp_path: Path, tiny_models: dict[str, Path], make_engine: MakeEngine
) -> None:
    engine = make_engine("wan", tiny_models["wan-vace"])
    red, blue = png(tmp_path / "red.png", (220, 30, 30)), png(tmp_path / "blue.png", (20, 40, 230))
    plain = made(tmp_path, engine, "plain")
    again = made(tmp_path, engine, "again")
    one = made(tmp_path, engine, "one", reference_images=(red,))
    two = made(tmp_path, engine, "two", reference_images=(red, blue))
    noise = change(plain, again)
    assert noise < 1.0
    assert plain.shape == one.shape == two.shape  # references add no frames
    assert change(plain, one) > noise + 1.0
    assert change(one, two) > noise + 1.0


def test_reference_frames_reach_every_chained_pass_and_image_to_video(
    tmp_path: Path,
    tiny_models: dict[str, Path],
    make_engine: MakeEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from diffusers import WanVACEPipeline

    spy = PipelineSpy(monkeypatch, WanVACEPipeline)
    engine = make_engine("wan", tiny_models["wan-vace"], segment_frames=9)
    red = png(tmp_path / "red.png", (220, 30, 30))
    video = made(
        tmp_path,
        engine,
        "refs",
        mode=Mode.IMAGE_TO_VIDEO,
        duration_s=10.0,
        reference_images=(red,),
    )
    assert video.shape[0] == 20 and len(spy.calls) == 3  # three passes, each conditioned
    for call in spy.calls:
        assert [r.getpixel((0, 0)) for r in call["reference_images"]] == [(220, 30, 30)]
        assert len(call["video"]) == len(call["mask"]) == call["num_frames"]
    # The first pass starts on the request's image (request()'s red start frame).
    first = np.asarray(spy.calls[0]["video"][0]).astype(np.int16)
    assert np.abs(first - np.array([220, 40, 40])).mean() < 2


def test_vace_inputs_are_the_start_frame_task_and_the_references_in_order(
    tmp_path: Path,
) -> None:
    red, blue = png(tmp_path / "red.png", (220, 30, 30)), png(tmp_path / "blue.png", (20, 40, 230))
    start = np.zeros((32, 64, 3), dtype=np.uint8)
    start[:, 32:] = 255  # black left half, white right half
    kwargs: dict[str, object] = {"width": 64, "height": 32, "num_frames": 9}
    vace_conditioning(kwargs, start, (red, blue), "wan engine")
    video, mask = kwargs["video"], kwargs["mask"]
    assert isinstance(video, list) and isinstance(mask, list)
    assert len(video) == len(mask) == 9
    assert np.array_equal(np.asarray(video[0]), start)
    assert all(np.asarray(f).tolist() == np.full((32, 64, 3), 128).tolist() for f in video[1:])
    assert np.asarray(mask[0]).max() == 0 and all(np.asarray(m).min() == 255 for m in mask[1:])
    refs = kwargs["reference_images"]
    assert isinstance(refs, list)
    assert [r.getpixel((0, 0)) for r in refs] == [(220, 30, 30), (20, 40, 230)]
    # Text-to-video: no control video (VACE fills in its own), only the references.
    plain: dict[str, object] = {"width": 64, "height": 32, "num_frames": 9}
    vace_conditioning(plain, None, (), "wan engine")
    assert set(plain) == {"width", "height", "num_frames"}


def test_an_unreadable_reference_fails_the_task_cleanly(
    tmp_path: Path, tiny_models: dict[str, Path], make_engine: MakeEngine
) -> None:
    engine = make_engine("wan", tiny_models["wan-vace"])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(EngineError, match="could not read a character's reference frame"):
        made(tmp_path, engine, "broken", reference_images=(broken,))
