"""The output video every diffusers engine writes: its size, rate and frames, and an encoding
failure as the engine's error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reel.engines.base import EngineError, EngineOutput, GenerationRequest
from reel.engines.diffusers.geometry import Geometry
from reel.engines.diffusers.runtime import output, writing
from reel.engines.diffusers.segments import plan_segments
from reel.media.video import VideoEncodeError, probe
from reel.types import Mode


def _request(tmp_path: Path) -> GenerationRequest:
    return GenerationRequest(
        task_id="t",
        prompt="a lighthouse",
        mode=Mode.TEXT_TO_VIDEO,
        width=64,
        height=32,
        duration_s=1.0,
        output_path=tmp_path / "out.mp4",
    )


_GEOMETRY = Geometry(
    gen_width=32,
    gen_height=16,
    out_width=64,
    out_height=32,
    fps=8,
    plan=plan_segments(8, max_frames=9, temporal_ratio=4),
)


def test_writing_writes_the_output_at_the_geometrys_size_and_rate(tmp_path: Path) -> None:
    req = _request(tmp_path)
    with writing(req, _GEOMETRY, label="x engine", audio_rate=16_000, audio_channels=1) as w:
        w.write_audio(np.zeros((1, 16_000), dtype=np.float32))
        for _ in range(8):
            w.write(np.full((32, 64, 3), 128, dtype=np.uint8))
    info = probe(req.output_path)
    assert (info.width, info.height, info.fps, info.frames) == (64, 32, 8.0, 8)
    assert info.audio is not None
    assert output(req, _GEOMETRY, 8, {"x": {"passes": 1}}) == EngineOutput(
        path=req.output_path, width=64, height=32, fps=8.0, frames=8, metadata={"x": {"passes": 1}}
    )


def test_an_encoding_failure_is_the_engines_error_and_leaves_no_file(tmp_path: Path) -> None:
    req = _request(tmp_path)
    with (
        pytest.raises(EngineError, match=r"^x engine: could not encode the video$") as caught,
        writing(req, _GEOMETRY, label="x engine") as w,
    ):
        w.write(np.zeros((32, 64, 3), dtype=np.uint8))
        raise VideoEncodeError("disk full")
    assert isinstance(caught.value.__cause__, VideoEncodeError)
    assert list(tmp_path.iterdir()) == []
