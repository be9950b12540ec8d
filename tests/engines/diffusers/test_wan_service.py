"""Edits and characters through /v1/videos on tiny Wan models named in a models file:
API → queue → worker → engine → MP4, each model loaded through the engine's real path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from reel.config import Settings
from reel.db.models import Task
from reel.media.video import probe, sample_frames
from reel.service import ledger
from reel.service.context import Services
from reel.storage.naming import character_frame_key
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.api.test_openai_ops import content, mp4
from tests.conftest import auth
from tests.engines.diffusers.tiny import (
    PipelineSpy,
    params_toml,
    require_gpu_extra,
    service_settings,
    tiers_toml,
)
from tests.factories import make_key

require_gpu_extra()
pytestmark = pytest.mark.gpu

V1 = "/v1/videos"


@pytest.fixture
def settings(tmp_path: Path, tiny_models: dict[str, Path]) -> Settings:
    """Wan 2.2 TI2V serves every tier (and edits, in 5-frame windows); a public VACE model
    takes characters (a fixed seed, so its videos are reproducible)."""
    models = f"""
[models.wan]
engine = "wan"
[models.wan.params]
model_dir = "{tiny_models["wan"]}"
segment_frames = 5
{params_toml(scale_to_tier=True)}

[models.wan-vace]
engine = "wan"
public = true
[models.wan-vace.params]
model_dir = "{tiny_models["wan-vace"]}"
seed = 7
{params_toml()}
{tiers_toml("wan")}"""
    return service_settings(tmp_path, models)


def balance(services: Services, key_id: str) -> int:
    with services.db.read() as session:
        return ledger.history(session, key_id, limit=1)[0].balance_after


def finished(client: TestClient, runner: Runner, key: str, path: str, body: dict) -> dict:
    resp = client.post(V1 + path, json=body, headers=auth(key))
    assert resp.status_code == 200, resp.text
    assert run_once(runner)
    video = client.get(f"{V1}/{resp.json()['id']}", headers=auth(key)).json()
    assert video["status"] == "completed", video
    return dict(video)


def test_an_edit_through_the_api_keeps_length_and_size(
    client: TestClient, services: Services, runner: Runner, tmp_path: Path
) -> None:
    key = make_key(services, credits=100)
    source = finished(client, runner, key.key, "", {"prompt": "a red kite", "seconds": "4"})
    before = balance(services, key.id)
    edited = finished(
        client,
        runner,
        key.key,
        "/edits",
        {"prompt": "the kite at night", "video": {"id": source["id"]}},
    )
    assert edited["seconds"] == "4" and edited["size"] == source["size"]
    assert balance(services, key.id) == before - 2  # priced as a 4 s create at sora-2
    src = content(client, key.key, source["id"], tmp_path)
    out = content(client, key.key, edited["id"], tmp_path)
    a, b = probe(src), probe(out)
    assert (b.width, b.height, b.fps, b.frames) == (a.width, a.height, a.fps, a.frames)
    assert f"{b.width}x{b.height}" == source["size"] and b.frames == 8  # 4 s at 2 fps
    frames = [np.stack(list(sample_frames(p, range(8)))).astype(np.int16) for p in (src, out)]
    assert np.abs(frames[0] - frames[1]).mean() > 1.0  # a new picture, not the source
    with services.db.read() as session:
        task = session.get(Task, edited["id"])
        assert task is not None and task.engine == "wan"
        assert task.extra["edit_windows"] == 2  # 8 frames in windows of 5


def test_a_character_named_in_a_prompt_conditions_the_vace_model(
    client: TestClient,
    services: Services,
    runner: Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from diffusers import WanVACEPipeline

    spy = PipelineSpy(monkeypatch, WanVACEPipeline)
    key = make_key(services, credits=100)
    made = client.post(
        f"{V1}/characters",
        data={"name": "Mara"},
        files={"video": ("mara.mp4", mp4(tmp_path, 3), "video/mp4")},
        headers=auth(key.key),
    )
    assert made.status_code == 200, made.text
    body = {"prompt": "Mara walks on the beach", "model": "wan-vace", "seconds": "4"}
    video = finished(client, runner, key.key, "", body)
    with services.db.read() as session:
        task = session.get(Task, video["id"])
        assert task is not None and task.extra["characters"] == [made.json()["id"]]
        assert task.engine == "wan" and task.model == "wan-vace"
    assert probe(content(client, key.key, video["id"], tmp_path)).frames == 8
    # Every reference frame of the character went to the model, in order, as stored.
    refs = spy.calls[0]["reference_images"]
    assert len(spy.calls) == 1 and len(refs) == task.extra["referenceFrames"] >= 1
    for n, ref in enumerate(refs):
        stored = tmp_path / f"ref{n}.png"
        services.storage.get_to(character_frame_key(made.json()["id"], n), stored)
        with Image.open(stored) as image:
            assert np.array_equal(np.asarray(ref), np.asarray(image.convert("RGB")))
    # The same prompt once the character is gone: a plain text-to-video pass.
    client.delete(f"{V1}/characters/{made.json()['id']}", headers=auth(key.key))
    finished(client, runner, key.key, "", body)
    assert "reference_images" not in spy.calls[1]
