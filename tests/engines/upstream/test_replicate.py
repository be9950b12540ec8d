"""The Replicate predictions engine against a loopback fake of the predictions API."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from reel.config import Settings
from reel.engines.base import EngineError, Interrupted
from reel.types import Mode, Stage
from tests.engines.upstream.conftest import FAST, Sink, make_engine, request, upstream_meta
from tests.fakeupstreams import FakeReplicate, Fault, wait_for
from tests.imageserver import png_bytes


def rep_params(
    server: FakeReplicate, endpoint: str = "wan-video/wan-2.2-t2v-fast", **extra: object
) -> dict[str, object]:
    return {
        "base_url": server.url,
        "endpoint": endpoint,
        "credentials_env": "FAKE_REPLICATE_TOKEN",
        "input": {
            "prompt": "{prompt}",
            "num_frames": "{num_frames}",
            "image": "{image_url}",
            "seed": "{seed}",
        },
        "fps": 16,
        **FAST,
        **extra,
    }


@pytest.mark.parametrize(
    ("endpoint", "path", "version"),
    [
        ("wan-video/wan-2.2-t2v-fast", "/v1/models/wan-video/wan-2.2-t2v-fast/predictions", ""),
        ("owner/model:5c7d5dc6dd8b", "/v1/predictions", "5c7d5dc6dd8b"),
        ("deployments/acme/wan-prod", "/v1/deployments/acme/wan-prod/predictions", ""),
    ],
)
def test_create_get_download(
    replicate: FakeReplicate,
    upstream_settings: Settings,
    tmp_path: Path,
    endpoint: str,
    path: str,
    version: str,
) -> None:
    engine = make_engine("replicate", rep_params(replicate, endpoint), upstream_settings)
    sink = Sink()
    out = engine.generate(request(tmp_path), sink)
    assert out.frames == 8
    create = replicate.calls("submit")[0]
    assert create.path == path
    assert create.headers["authorization"] == "Bearer r8-secret-456"
    body = json.loads(create.body)
    assert body["input"] == {"prompt": "a red fox in the snow", "num_frames": 160, "seed": 1234}
    assert body.get("version", "") == version
    meta = upstream_meta(out)
    assert meta["metrics"] == {
        "predict_time": replicate.run_s,
        "total_time": replicate.queue_s + replicate.run_s,
    }
    assert max(p for s, p in sink.calls if s is Stage.GENERATING) > 5


def test_prefer_wait_returns_the_finished_prediction(
    replicate: FakeReplicate, upstream_settings: Settings, tmp_path: Path
) -> None:
    engine = make_engine("replicate", rep_params(replicate, prefer_wait=5), upstream_settings)
    engine.generate(request(tmp_path), Sink())
    assert replicate.calls("submit")[0].headers["prefer"] == "wait=5"
    assert len(replicate.calls("status")) <= 1  # the create answer was already final


def test_image_goes_as_data_uri_when_configured(
    replicate: FakeReplicate, upstream_settings: Settings, tmp_path: Path
) -> None:
    engine = make_engine("replicate", rep_params(replicate, image="data_uri"), upstream_settings)
    png = png_bytes()
    engine.generate(request(tmp_path, mode=Mode.IMAGE_TO_VIDEO, image_png=png), Sink())
    image = json.loads(replicate.calls("submit")[0].body)["input"]["image"]
    assert image.startswith("data:image/png;base64,")


def test_image_by_url_needs_a_public_url(
    replicate: FakeReplicate, upstream_settings: Settings, tmp_path: Path
) -> None:
    engine = make_engine("replicate", rep_params(replicate), upstream_settings)
    req = request(tmp_path, mode=Mode.IMAGE_TO_VIDEO, image_png=png_bytes())  # no image_url
    with pytest.raises(EngineError) as info:
        engine.generate(req, Sink())
    assert "not configured" in info.value.message
    assert not replicate.calls("submit")
    url = "http://reel.example/media/inputs/task_test.png?exp=1&sig=x"
    engine.generate(
        request(tmp_path, mode=Mode.IMAGE_TO_VIDEO, image_png=png_bytes(), image_url=url), Sink()
    )
    assert json.loads(replicate.calls("submit")[0].body)["input"]["image"] == url


def test_failed_prediction(
    replicate: FakeReplicate, upstream_settings: Settings, tmp_path: Path
) -> None:
    replicate.fail_jobs = True
    engine = make_engine("replicate", rep_params(replicate), upstream_settings)
    with pytest.raises(EngineError) as info:
        engine.generate(request(tmp_path), Sink())
    assert "CUDA" not in info.value.message


def test_cancel_is_sent_upstream(
    replicate: FakeReplicate, upstream_settings: Settings, tmp_path: Path
) -> None:
    replicate.run_s = 30
    engine = make_engine("replicate", rep_params(replicate), upstream_settings)
    sink = Sink()

    def cancel_soon() -> None:
        wait_for(lambda: Stage.GENERATING in sink.stages())
        sink.stop = "canceled"

    threading.Thread(target=cancel_soon, daemon=True).start()
    with pytest.raises(Interrupted):
        engine.generate(request(tmp_path), sink)
    assert [c.path for c in replicate.calls("cancel")] == [
        f"/v1/predictions/{replicate.job().id}/cancel"
    ]
    assert replicate.job().canceled


def test_lost_create_is_found_in_the_prediction_list(
    replicate: FakeReplicate, upstream_settings: Settings, tmp_path: Path
) -> None:
    replicate.fail("submit", Fault(status=0, after_create=True, drop=True))
    engine = make_engine("replicate", rep_params(replicate), upstream_settings)
    out = engine.generate(request(tmp_path), Sink())
    assert len(replicate.calls("submit")) == 1  # never submitted twice
    assert replicate.calls("list")
    meta = upstream_meta(out)
    assert meta["request_id"] == replicate.job().id
    assert any(a["outcome"] == "found_after_lost_submission" for a in meta["attempts"])  # type: ignore[index, union-attr]


def test_polling_rides_out_server_errors(
    replicate: FakeReplicate, upstream_settings: Settings, tmp_path: Path
) -> None:
    replicate.fail(
        "status",
        Fault(status=502),
        Fault(status=503, headers={"Retry-After": "0"}),
        Fault(malformed=True),
    )
    engine = make_engine("replicate", rep_params(replicate), upstream_settings)
    assert engine.generate(request(tmp_path), Sink()).frames == 8
