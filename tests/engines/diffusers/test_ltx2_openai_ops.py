"""``/v1/videos/extensions`` and ``/v1/videos/edits`` through the whole service (API → queue →
worker → engine → MP4) on a tiny LTX-2 model named in a models file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from reel.config import Settings
from reel.db.models import Task
from reel.media.audio import Audio
from reel.media.video import encode_frames, probe, read_audio
from reel.service.context import Services
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.api.test_openai_ops import content
from tests.conftest import auth
from tests.engines.diffusers.test_ltx2 import ltx2_settings
from tests.engines.diffusers.tiny import require_gpu_extra
from tests.factories import make_key

require_gpu_extra()
pytestmark = pytest.mark.gpu

V1 = "/v1/videos"


@pytest.fixture
def settings(tmp_path: Path, tiny_ltx2: dict[str, Path]) -> Settings:
    return ltx2_settings(tmp_path, tiny_ltx2["model"])


def upload(tmp_path: Path) -> tuple[str, bytes, str]:
    """A 2 s clip at 8 fps with a tone (re-encoded by the service at 1280x720)."""
    xs = np.linspace(0, 255, 64, dtype=np.float32)[None, :, None]
    frames = [np.broadcast_to((xs + 9 * i) % 256, (36, 64, 3)).astype(np.uint8) for i in range(16)]
    tone = np.sin(np.linspace(0, 2 * np.pi * 440 * 2, 96_000, dtype=np.float32)) * 0.3
    path = tmp_path / "clip.mp4"
    encode_frames(frames, path, fps=8, audio=Audio(np.stack([tone, tone]), 48_000))
    return ("clip.mp4", path.read_bytes(), "video/mp4")


def finished(
    client: TestClient, runner: Runner, key: str, tmp_path: Path, path: str, data: dict[str, str]
) -> tuple[Path, dict[str, Any]]:
    """Post ``data`` and the clip to ``/v1/videos{path}`` and run the task: its finished video,
    downloaded, and the video object."""
    resp = client.post(V1 + path, data=data, files={"video": upload(tmp_path)}, headers=auth(key))
    assert resp.status_code == 200, resp.text
    assert run_once(runner)
    video = client.get(f"{V1}/{resp.json()['id']}", headers=auth(key)).json()
    assert video["status"] == "completed", video
    return content(client, key, video["id"], tmp_path), video


def test_an_extension_through_the_api(
    client: TestClient, services: Services, runner: Runner, tmp_path: Path
) -> None:
    key = make_key(services, credits=100).key
    data = {"prompt": "and then the sun sets", "seconds": "4"}
    path, video = finished(client, runner, key, tmp_path, "/extensions", data)
    info = probe(path)
    # The 2 s source at 8 fps, then the 4 s segment (made at 4 fps, joined at the source's 8).
    assert (info.width, info.height, info.fps, info.frames) == (1280, 720, 8.0, 48)
    sound = read_audio(path)
    assert sound is not None and sound.duration_s == pytest.approx(6.0, abs=0.15)
    with services.db.read() as session:
        task = session.get(Task, video["id"])
        assert task is not None and task.extra["ltx2"]["passes"] == 1


def test_an_edit_through_the_api(
    client: TestClient, services: Services, runner: Runner, tmp_path: Path
) -> None:
    key = make_key(services, credits=100).key
    data = {"prompt": "a cat on the beach at sunset"}
    path, video = finished(client, runner, key, tmp_path, "/edits", data)
    assert video["seconds"] == "2"
    info = probe(path)
    assert (info.width, info.height, info.fps, info.frames) == (1280, 720, 8.0, 16)
    sound = read_audio(path)
    assert sound is not None and sound.duration_s == pytest.approx(2.0, abs=0.15)
    assert sound.peak > 0.01  # the model's own sound for the edited clip
