"""On the embedded default (the sandbox), both surfaces deliver MP4s with a real audio track."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from reel.media.video import probe, read_audio
from reel.service.context import Services
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.api.test_openai_contract import V1, fetch_content
from tests.api.test_seed_contract import GEN, STATUS, T2V, get_media
from tests.conftest import auth


def assert_sound(data: bytes, tmp_path: Path) -> None:
    """The file has an audio track as long as its video (±1 frame) that is not silence."""
    path = tmp_path / "delivered.mp4"
    path.write_bytes(data)
    info = probe(path)
    audio = read_audio(path)
    assert info.audio is not None and audio is not None
    assert info.audio.codec == "aac" and info.audio.rate == 48_000
    assert info.audio.duration_s == pytest.approx(info.duration_s, abs=1 / info.fps)
    assert float(np.sqrt(np.mean(np.square(audio.samples)))) > 0.02


def test_seed_surface_delivers_sound(
    client: TestClient, services: Services, api_key: str, tmp_path: Path
) -> None:
    tid = client.post(GEN, json=T2V, headers=auth(api_key)).json()["taskId"]
    assert run_once(Runner(services))
    status = client.post(STATUS, json={"taskId": tid}, headers=auth(api_key)).json()
    assert status["status"] == "completed"

    video = get_media(client, status["videoUrl"])

    assert video.status_code == 200
    assert_sound(video.content, tmp_path)


def test_openai_surface_delivers_sound(
    client: TestClient, services: Services, api_key: str, tmp_path: Path
) -> None:
    body = {"prompt": "A fox in the snow", "seconds": "4", "size": "1280x720"}
    vid = client.post(V1, json=body, headers=auth(api_key)).json()["id"]
    assert run_once(Runner(services))

    content = fetch_content(client, f"{V1}/{vid}/content", auth(api_key))

    assert content.status_code == 200
    assert_sound(content.content, tmp_path)
