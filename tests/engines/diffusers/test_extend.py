"""An extension on a diffusers engine: the worker asks the model for an image-to-video segment
started on the source's last frame and joins it to the source (tiny random-weight Wan)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reel.config import Settings
from reel.db.models import Task
from reel.engines.registry import check_engine
from reel.media.audio import Audio
from reel.media.previews import last_frame_png
from reel.media.video import encode_frames, frame_at, probe
from reel.storage import LocalStorage
from reel.storage.naming import input_video_key
from reel.types import Mode
from reel.worker import operations
from tests.engines.diffusers.test_engines import Sink, engine, request
from tests.engines.diffusers.tiny import require_gpu_extra

require_gpu_extra()
pytestmark = pytest.mark.gpu


def test_wan_extends_from_the_last_frame(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    source = tmp_path / "source.mp4"
    frames = [np.full((32, 64, 3), 40 * i, dtype=np.uint8) for i in range(4)]  # 2 s at 2 fps
    tone = np.sin(np.linspace(0, 880 * np.pi, 96_000, dtype=np.float32))[None, :] * 0.3
    encode_frames(frames, source, fps=2, audio=Audio(np.repeat(tone, 2, axis=0), 48_000))
    storage = LocalStorage(tmp_path / "media", secret=b"s" * 32)
    storage.put_file(input_video_key("task_x"), source)
    start = tmp_path / "last.png"
    start.write_bytes(last_frame_png(source))
    task = Task(id="task_x", extra={"videoOp": "extension", "segmentSeconds": 4})
    (tmp_path / "out").mkdir()
    req = request(
        tmp_path, Mode.IMAGE_TO_VIDEO, width=64, height=32, duration_s=6.0, image_path=start
    )
    e = engine(tmp_path, "wan", tiny_models["wan"], segment_frames=21)
    try:
        out = operations.generate(
            e,
            task,
            req,
            Sink(),
            storage=storage,
            capabilities=lambda: check_engine(
                "wan",
                params={"model_dir": str(tiny_models["wan"])},
                settings=Settings(data_dir=tmp_path),
            ),
        )
    finally:
        e.close()  # other tests count loads of the same model
    info = probe(out.path)
    assert abs(info.duration_s - 6.0) < 0.01 and info.frames == 12 and info.has_audio
    # The source's frames come first, unchanged but for compression.
    assert abs(int(frame_at(out.path, 1.0).mean()) - 80) < 8
