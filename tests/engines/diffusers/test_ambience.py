"""The optional ambience track of a silent model, on a tiny random-weight Stable Audio pipeline.

The Stable Audio folder is saved to disk and named in a models file (``params.ambience``)
beside a tiny Wan model, loaded through the engines' real path, and run through the whole
service (API → queue → worker → engine → MP4).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from reel.config import Settings
from reel.engines.base import EngineConfigError, GenerationRequest, Interrupted
from reel.engines.diffusers.ambience import join_pieces
from reel.engines.diffusers.ltx import LTXEngine
from reel.engines.diffusers.wan import WanEngine
from reel.media.video import probe, read_audio
from reel.service import ledger
from reel.service.context import Services
from reel.types import Mode, Stage
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.conftest import auth
from tests.engines.diffusers.tiny import FAST, params_toml, require_gpu_extra, service_settings
from tests.factories import make_key

torch = require_gpu_extra()
pytestmark = pytest.mark.gpu

GEN = "/api/sora-2/generate"
STATUS = "/api/sora-2/check-status"


@pytest.fixture(scope="module")
def tiny_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny Stable Audio folder (8 s a call, so a 10 s video takes two pieces)."""
    from reel.engines.diffusers.tiny import save_pipeline
    from reel.engines.diffusers.tiny_audio import build_stable_audio

    return save_pipeline(build_stable_audio(), tmp_path_factory.mktemp("audio") / "stable-audio")


@pytest.fixture
def settings(tmp_path: Path, tiny_models: dict[str, Path], tiny_audio: Path) -> Settings:
    fast = params_toml()
    models = f"""
[models.wan]
engine = "wan"
[models.wan.params]
model_dir = "{tiny_models["wan"]}"
segment_frames = 21
{fast}

[models.wan-ambience]
engine = "wan"
[models.wan-ambience.params]
model_dir = "{tiny_models["wan"]}"
segment_frames = 21
ambience = {{ model_dir = "{tiny_audio}", steps = 2, guidance = 3.0 }}
{fast}

[tiers]
sora2 = "wan-ambience"
sora2-pro-standard = "wan"
sora2-pro-high = "wan"
"""
    return service_settings(tmp_path, models)


def run_task(client: TestClient, runner: Runner, key: str, tier: str) -> dict[str, Any]:
    body = {"prompt": "rain on a city street at night", "mode": "textToVideo", "modelTier": tier}
    r = client.post(GEN, json=body, headers=auth(key))
    assert r.status_code == 200, r.text
    assert run_once(runner)
    status = client.post(STATUS, json={"taskId": r.json()["taskId"]}, headers=auth(key)).json()
    return dict(status)


def download(client: TestClient, status: dict[str, Any], path: Path) -> Path:
    path.write_bytes(client.get(status["videoUrl"]).content)
    return path


def test_ambience_track_on_a_silent_model_and_none_without_it(
    client: TestClient, services: Services, runner: Runner, tmp_path: Path
) -> None:
    key = make_key(services, credits=100).key

    status = run_task(client, runner, key, "sora2")  # wan + ambience
    assert status["status"] == "completed" and status["engine"] == "wan", status
    path = download(client, status, tmp_path / "ambience.mp4")
    info, audio = probe(path), read_audio(path)
    assert info.frames == 20 and info.duration_s == pytest.approx(10.0)
    assert info.audio is not None and audio is not None
    assert info.audio.codec == "aac" and info.audio.rate == 48_000
    assert info.audio.duration_s == pytest.approx(info.duration_s, abs=1 / info.fps)
    assert audio.start_s == pytest.approx(0.0, abs=1 / info.fps)
    assert audio.peak > 0.01 and float(np.std(audio.samples)) > 1e-3
    # Both pieces (8 s, then the rest) carry sound: no silent stretch after the first.
    tail = audio.samples[:, int(8.5 * audio.rate) : int(9.5 * audio.rate)]
    assert float(np.abs(tail).max()) > 0.01

    status = run_task(client, runner, key, "sora2-pro-standard")  # the same model, silent
    assert status["status"] == "completed", status
    path = download(client, status, tmp_path / "silent.mp4")
    assert probe(path).audio is None and read_audio(path) is None
    assert probe(path).frames == 20


def test_ambience_failure_fails_the_task_and_refunds(
    client: TestClient,
    services: Services,
    runner: Runner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issued = make_key(services, credits=100)
    assert run_task(client, runner, issued.key, "sora2")["status"] == "completed"
    pipe = runner._engines["wan-ambience"]._slot.pipes.ambience  # type: ignore[attr-defined]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(pipe.transformer, "forward", broken)
    failed = run_task(client, runner, issued.key, "sora2")
    assert failed["status"] == "failed" and failed["errorCode"] == "GENERATION_FAILED"
    assert "ambience" in failed["error"]
    with services.db.read() as session:
        kinds = sorted(
            e.kind for e in ledger.history(session, issued.id) if e.task_id == failed["taskId"]
        )
    assert kinds == ["charge", "refund"]


def test_ambience_cancel_stops_at_the_next_step_and_leaves_nothing(
    tiny_models: dict[str, Path], tiny_audio: Path, tmp_path: Path
) -> None:
    wan = WanEngine(
        params={
            "model_dir": str(tiny_models["wan"]),
            **FAST,
            "ambience": {"model_dir": str(tiny_audio), "steps": 2},
        },
        settings=Settings(data_dir=tmp_path / "data"),
    )
    seen: list[tuple[Stage, float]] = []

    def sink(stage: Stage, pct: float) -> None:
        seen.append((stage, pct))
        if stage is Stage.ENCODING and pct >= 98:  # the frames are done: the ambience runs
            raise Interrupted("canceled")

    request = GenerationRequest(
        task_id="t1",
        prompt="wind in the trees",
        mode=Mode.TEXT_TO_VIDEO,
        width=64,
        height=32,
        duration_s=4.0,
        output_path=tmp_path / "out.mp4",
        seed=5,
    )
    try:
        with pytest.raises(Interrupted):
            wan.generate(request, sink)
    finally:
        wan.close()
    assert not (tmp_path / "out.mp4").exists()
    assert list(tmp_path.glob(".out.mp4.*")) == []


def test_ambience_startup_checks(
    tiny_models: dict[str, Path], tiny_audio: Path, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    base = {"model_dir": str(tiny_models["wan"])}
    WanEngine.check(params={**base, "ambience": {"model_dir": str(tiny_audio)}}, settings=settings)
    cases: list[tuple[object, str]] = [
        ("stable-audio", "params.ambience must be a table"),
        ({"steps": 2}, "params.ambience.model_dir is required"),
        ({"model_dir": str(tiny_audio), "volume": 1}, "unknown params.ambience keys"),
        ({"model_dir": str(tiny_audio), "steps": 0}, "params.ambience.steps must be"),
        ({"model_dir": str(tiny_models["wan"])}, "holds a WanPipeline pipeline"),
        ({"model_dir": str(tmp_path)}, "params.ambience: model directory .* is incomplete"),
    ]
    for value, message in cases:
        with pytest.raises(EngineConfigError, match=message):
            WanEngine.check(params={**base, "ambience": value}, settings=settings)


def test_ambience_pieces_join_with_a_cross_fade() -> None:
    fade = 10
    first = np.full((2, 80), 0.5, dtype=np.float32)
    second = np.full((2, 40), -0.5, dtype=np.float32)
    joined = join_pieces([first, second], fade)
    assert joined.shape == (2, 80 + 40 - fade) and joined.dtype == np.float32
    assert np.all(joined[:, :70] == 0.5) and np.all(joined[:, 80:] == -0.5)
    seam = joined[0, 70:80]
    assert seam[0] == pytest.approx(0.5) and seam[-1] == pytest.approx(-0.5)
    assert np.all(np.diff(seam) < 0)  # from one piece to the next, without a jump
    assert join_pieces([first], fade).shape == first.shape


def test_ambience_on_ltx_video_in_one_piece(
    tiny_models: dict[str, Path], tiny_audio: Path, tmp_path: Path
) -> None:
    ltx = LTXEngine(
        params={
            "model_dir": str(tiny_models["ltx"]),
            **FAST,
            "segment_frames": 9,
            "ambience": {"model_dir": str(tiny_audio), "steps": 2, "seed": 7},
        },
        settings=Settings(data_dir=tmp_path / "data"),
    )
    request = GenerationRequest(
        task_id="t2",
        prompt="waves on the sea",
        mode=Mode.TEXT_TO_VIDEO,
        width=64,
        height=32,
        duration_s=4.0,  # shorter than the tiny model's 8 s: one call
        output_path=tmp_path / "ltx.mp4",
        seed=1,
    )
    try:
        out = ltx.generate(request, lambda stage, pct: None)
    finally:
        ltx.close()
    info, audio = probe(out.path), read_audio(out.path)
    assert info.frames == 8 and info.audio is not None and audio is not None
    assert info.audio.duration_s == pytest.approx(info.duration_s, abs=1 / info.fps)
    assert audio.peak > 0.01 and float(np.std(audio.samples)) > 1e-3


def test_ambience_scheduler_needing_torchsde_is_refused_without_it(
    tiny_models: dict[str, Path],
    tiny_audio: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = shutil.copytree(tiny_audio, tmp_path / "stable-audio-open")
    config = folder / "scheduler" / "scheduler_config.json"
    data = json.loads(config.read_text())
    config.write_text(json.dumps({**data, "_class_name": "CosineDPMSolverMultistepScheduler"}))
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "torchsde" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    params = {"model_dir": str(tiny_models["wan"]), "ambience": {"model_dir": str(folder)}}
    with pytest.raises(
        EngineConfigError, match=r"needs torchsde: pip install 'reel-server\[ambience\]'"
    ):
        WanEngine.check(params=params, settings=Settings(data_dir=tmp_path / "data"))
