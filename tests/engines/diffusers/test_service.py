"""The whole service on tiny Wan and LTX-Video models: API → queue → worker → engine → MP4.

Each model folder is saved to disk and loaded through the engines' real loading path, named
in a models file exactly as an operator would write it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from reel.config import Settings
from reel.engines.base import EngineConfigError
from reel.engines.diffusers.wan import WanEngine
from reel.media.video import probe
from reel.service import ledger
from reel.service.catalog import load_catalog
from reel.service.context import Services
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.conftest import auth, with_settings
from tests.e2e.server import ReelServer
from tests.e2e.test_server import post, wait_final
from tests.engines.diffusers.tiny import params_toml, require_gpu_extra, service_settings
from tests.factories import make_key
from tests.imageserver import image_server, png_bytes

torch = require_gpu_extra()
pytestmark = pytest.mark.gpu

GEN = "/api/sora-2/generate"
STATUS = "/api/sora-2/check-status"


def models_toml(tiny: dict[str, Path], *, sora2: str = "wan") -> str:
    fast = params_toml()
    return f"""
[models.wan]
engine = "wan"
[models.wan.params]
model_dir = "{tiny["wan"]}"
segment_frames = 21
{fast}

[models.wan-chained]
engine = "wan"
[models.wan-chained.params]
model_dir = "{tiny["wan"]}"
segment_frames = 9
{params_toml(scale_to_tier=True)}

[models.ltx]
engine = "ltx"
[models.ltx.params]
model_dir = "{tiny["ltx"]}"
segment_frames = 9
{fast}

[models.wan-text-only]
engine = "wan"
[models.wan-text-only.params]
model_dir = "{tiny["wan-t2v"]}"
{fast}

[tiers]
sora2 = "{sora2}"
sora2-pro-standard = "wan-chained"
sora2-pro-high = "ltx"
"""


@pytest.fixture
def settings(tmp_path: Path, tiny_models: dict[str, Path]) -> Settings:
    models = models_toml(tiny_models)
    return service_settings(tmp_path, models, image_fetch_allow_hosts=("127.0.0.1",))


def run_task(client: TestClient, runner: Runner, key: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(GEN, json=body, headers=auth(key))
    assert r.status_code == 200, r.text
    assert run_once(runner)
    status = client.post(STATUS, json={"taskId": r.json()["taskId"]}, headers=auth(key)).json()
    return dict(status)


def download(client: TestClient, status: dict[str, Any], path: Path) -> Path:
    video = client.get(status["videoUrl"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    path.write_bytes(video.content)
    return path


def test_text_image_and_chained_videos_through_the_api(
    client: TestClient,
    services: Services,
    runner: Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: list[str] = []
    real_load = WanEngine._load

    def counting_load(self: WanEngine, *args: Any) -> Any:
        loads.append(str(self._params.model_dir))
        return real_load(self, *args)

    monkeypatch.setattr(WanEngine, "_load", counting_load)
    key = make_key(services, credits=1000).key
    cases: list[tuple[dict[str, Any], str, tuple[int, int], int]] = [
        ({"modelTier": "sora2", "aspectRatio": "landscape"}, "wan", (64, 32), 10),
        ({"modelTier": "sora2", "aspectRatio": "portrait"}, "wan", (32, 64), 10),
        ({"modelTier": "sora2-pro-standard"}, "wan", (1280, 720), 10),  # 3 passes, scaled
        ({"modelTier": "sora2-pro-standard", "videoDuration": "15"}, "wan", (1280, 720), 15),
        ({"modelTier": "sora2-pro-high"}, "ltx", (64, 32), 10),  # 3 passes
    ]
    with image_server({"/cat.png": (200, "image/png", png_bytes(80, 60))}) as base:
        image = {"mode": "imageToVideo", "imageUrls": [f"{base}/cat.png"]}
        cases += [
            ({"modelTier": "sora2", **image}, "wan", (64, 32), 10),
            ({"modelTier": "sora2-pro-standard", **image}, "wan", (1280, 720), 10),
            ({"modelTier": "sora2-pro-high", **image}, "ltx", (64, 32), 10),
        ]
        for n, (extra, engine, size, seconds) in enumerate(cases):
            body = {
                "prompt": "a dog on the beach",
                "mode": "textToVideo",
                "aspectRatio": "landscape",
                **extra,
            }
            status = run_task(client, runner, key, body)
            assert status["status"] == "completed", (extra, status)
            assert status["engine"] == engine and status["mode"] == body["mode"]
            info = probe(download(client, status, tmp_path / f"{n}.mp4"))
            assert (info.width, info.height) == size, extra
            assert info.frames == 2 * seconds and info.fps == 2.0, extra
            assert info.duration_s == pytest.approx(seconds), extra
    # Loaded once in this worker, then reused: both Wan models share the folder and settings.
    assert len(loads) == 1


def test_out_of_memory_fails_and_refunds_and_the_worker_goes_on(
    client: TestClient, services: Services, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = make_key(services, credits=100)
    body = {"prompt": "a cat", "mode": "textToVideo", "modelTier": "sora2"}
    assert run_task(client, runner, issued.key, body)["status"] == "completed"
    transformer = runner._engines["wan"]._slot.pipes.t2v.transformer  # type: ignore[attr-defined]

    def oom(*args: Any, **kwargs: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 31.50 GiB")

    monkeypatch.setattr(transformer, "forward", oom)
    failed = run_task(client, runner, issued.key, body)
    assert failed["status"] == "failed" and failed["errorCode"] == "GENERATION_FAILED"
    assert "out of memory" in failed["error"]
    with services.db.read() as session:
        entries = ledger.history(session, issued.id)
        assert entries[0].balance_after == 100 - 4  # the failed task was refunded
        kinds = sorted(e.kind for e in entries if e.task_id == failed["taskId"])
    assert kinds == ["charge", "refund"]
    monkeypatch.undo()
    assert run_task(client, runner, issued.key, body)["status"] == "completed"


def test_a_tier_model_without_image_to_video_is_refused_at_worker_start(
    services: Services, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(models_toml(tiny_models, sora2="wan-text-only"))
    changed = with_settings(services, models_file=bad)
    changed = type(changed)(**{**changed.__dict__, "catalog": load_catalog(bad)})
    with pytest.raises(
        EngineConfigError,
        match="'wan-text-only' serves tier\\(s\\) sora2 but cannot do image-to-video",
    ):
        Runner(changed)
    # Not mapped to a tier, the same model is fine (text-to-video only).
    Runner(services, models=["wan-text-only"])


def _reel(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reel", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_refuses_to_start_workers_on_a_broken_models_file(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(models_toml(tiny_models, sora2="wan-text-only"))
    env = {"REEL_DATA_DIR": str(tmp_path / "data"), "REEL_MODELS_FILE": str(bad)}
    done = _reel("worker", env=env)
    assert done.returncode == 2, done.stderr
    assert "cannot do image-to-video" in done.stderr

    missing = tmp_path / "missing.toml"
    missing.write_text(models_toml({**tiny_models, "ltx": tmp_path / "not-downloaded"}))
    done = _reel("serve", "--port", "1", env={**env, "REEL_MODELS_FILE": str(missing)})
    assert done.returncode == 2, done.stderr
    assert f"model 'ltx': ltx engine: model directory {tmp_path / 'not-downloaded'}" in done.stderr


def test_real_server_with_a_models_file(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """`reel serve` with REEL_MODELS_FILE: a worker process loads the model and serves tasks."""
    models = tmp_path / "models.toml"
    models.write_text(models_toml(tiny_models))
    srv = ReelServer(tmp_path / "data", workers=1, REEL_MODELS_FILE=str(models))
    with srv, image_server({"/p.png": (200, "image/png", png_bytes(120, 90))}) as base:
        key = str(srv.create_key(credits=100)["key"])
        bodies = [
            {"modelTier": "sora2-pro-standard", "mode": "textToVideo"},  # chained, 1280x720
            {"modelTier": "sora2", "mode": "imageToVideo", "imageUrls": [f"{base}/p.png"]},
        ]
        submitted = [
            post(srv, GEN, key, {"prompt": "a fox", "aspectRatio": "landscape", **b}).json()
            for b in bodies
        ]
        finals = [wait_final(srv, key, str(s["taskId"]), timeout=240) for s in submitted]
        for n, final in enumerate(finals):
            assert final["status"] == "completed" and final["engine"] == "wan", (final, srv.log())
            video = httpx.get(str(final["videoUrl"]), timeout=30)
            (tmp_path / f"{n}.mp4").write_bytes(video.content)
    for n, size in enumerate([(1280, 720), (64, 32)]):
        info = probe(tmp_path / f"{n}.mp4")
        assert (info.width, info.height, info.frames) == (*size, 20)
        assert info.duration_s == pytest.approx(10.0)
