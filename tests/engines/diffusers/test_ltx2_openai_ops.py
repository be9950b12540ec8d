"""``/v1/videos/extensions`` and ``/v1/videos/edits`` through the whole service (API → queue →
worker → engine → MP4) on a tiny LTX-2 model named in a models file."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
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
from tests.conftest import auth
from tests.engines.diffusers.test_ltx2 import FAST
from tests.engines.diffusers.tiny import require_gpu_extra
from tests.factories import make_key

require_gpu_extra()
pytestmark = pytest.mark.gpu

V1 = "/v1/videos"


@pytest.fixture
def backend() -> str:
    return "embedded"


@pytest.fixture
def settings(tmp_path: Path, tiny_ltx2: dict[str, Path]) -> Settings:
    fast = "\n".join(f"{k} = {json.dumps(v)}" for k, v in FAST.items())
    models = tmp_path / "models.toml"
    models.write_text(f"""
[models.ltx2]
engine = "ltx2"
[models.ltx2.params]
model_dir = "{tiny_ltx2["model"]}"
{fast}

[tiers]
sora2 = "ltx2"
sora2-pro-standard = "ltx2"
sora2-pro-high = "ltx2"
""")
    return Settings(data_dir=tmp_path / "data", models_file=models, lease_seconds=30)


def upload(tmp_path: Path) -> tuple[str, bytes, str]:
    """A 2 s clip at 8 fps with a tone (re-encoded by the service at 1280x720)."""
    xs = np.linspace(0, 255, 64, dtype=np.float32)[None, :, None]
    frames = [np.broadcast_to((xs + 9 * i) % 256, (36, 64, 3)).astype(np.uint8) for i in range(16)]
    tone = np.sin(np.linspace(0, 2 * np.pi * 440 * 2, 96_000, dtype=np.float32)) * 0.3
    path = tmp_path / "clip.mp4"
    encode_frames(frames, path, fps=8, audio=Audio(np.stack([tone, tone]), 48_000))
    return ("clip.mp4", path.read_bytes(), "video/mp4")


def finished(
    client: TestClient, runner: Runner, key: str, resp: httpx.Response, tmp_path: Path
) -> tuple[Path, str]:
    """Run the task ``resp`` created; its finished video, downloaded, and its id."""
    assert resp.status_code == 200, resp.text
    video_id = str(resp.json()["id"])
    assert run_once(runner)
    done = client.get(f"{V1}/{video_id}", headers=auth(key)).json()
    assert done["status"] == "completed", done
    content = client.get(f"{V1}/{video_id}/content", headers=auth(key))
    assert content.status_code == 200
    path = tmp_path / f"{video_id}.mp4"
    path.write_bytes(content.content)
    return path, video_id


def test_an_extension_through_the_api(
    client: TestClient, services: Services, runner: Runner, tmp_path: Path
) -> None:
    key = make_key(services, credits=100).key
    resp = client.post(
        f"{V1}/extensions",
        data={"prompt": "and then the sun sets", "seconds": "4"},
        files={"video": upload(tmp_path)},
        headers=auth(key),
    )
    path, video_id = finished(client, runner, key, resp, tmp_path)
    info = probe(path)
    # The 2 s source at 8 fps, then the 4 s segment (made at 4 fps, joined at the source's 8).
    assert (info.width, info.height, info.fps, info.frames) == (1280, 720, 8.0, 48)
    sound = read_audio(path)
    assert sound is not None and sound.duration_s == pytest.approx(6.0, abs=0.15)
    with services.db.read() as session:
        task = session.get(Task, video_id)
        assert task is not None and task.extra["ltx2"]["passes"] == 1


def test_an_edit_through_the_api(
    client: TestClient, services: Services, runner: Runner, tmp_path: Path
) -> None:
    key = make_key(services, credits=100).key
    resp = client.post(
        f"{V1}/edits",
        data={"prompt": "a cat on the beach at sunset"},
        files={"video": upload(tmp_path)},
        headers=auth(key),
    )
    assert resp.status_code == 200 and resp.json()["seconds"] == "2", resp.text
    path, _ = finished(client, runner, key, resp, tmp_path)
    info = probe(path)
    assert (info.width, info.height, info.fps, info.frames) == (1280, 720, 8.0, 16)
    sound = read_audio(path)
    assert sound is not None and sound.duration_s == pytest.approx(2.0, abs=0.15)
    assert sound.peak > 0.01  # the model's own sound for the edited clip
