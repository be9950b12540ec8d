"""The fal.ai queue API engine against a loopback fake of the queue API."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from reel.config import Settings
from reel.engines.base import EngineConfigError, EngineError, Interrupted
from reel.media.video import probe
from reel.types import Stage
from tests.engines.upstream.conftest import (
    FAST,
    Saved,
    Sink,
    make_engine,
    request,
    upstream_meta,
)
from tests.fakeupstreams import FakeFal, Fault, wait_for


def fal_params(server: FakeFal, **extra: object) -> dict[str, object]:
    return {
        "base_url": server.url,
        "endpoint": "fal-ai/wan/v2.2-a14b/text-to-video",
        "credentials_env": "FAKE_FAL_KEY",
        **FAST,
        **extra,
    }


def test_submit_poll_result_download(
    fal: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    engine = make_engine("fal", fal_params(fal), upstream_settings)
    sink = Sink()
    out = engine.generate(request(tmp_path), sink)

    assert probe(out.path).frames == 8 and out.frames == 8
    submit = fal.calls("submit")[0]
    assert submit.path == "/fal-ai/wan/v2.2-a14b/text-to-video"
    assert submit.headers["authorization"] == "Key fal-secret-123"
    assert json.loads(submit.body) == {
        "prompt": "a red fox in the snow",
        "aspect_ratio": "16:9",
    }
    status = fal.calls("status")
    assert status and all(s.path.startswith("/fal-ai/wan/requests/") for s in status)
    assert status[0].query["logs"] == ["1"]
    assert Stage.QUEUED in sink.stages() and Stage.GENERATING in sink.stages()
    meta = upstream_meta(out)
    assert meta["request_id"] == fal.job().id and meta["kind"] == "fal"
    assert meta["metrics"] == {"inference_time": fal.run_s}


def test_job_failure_is_an_engine_error(
    fal: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    fal.fail_jobs = True
    engine = make_engine("fal", fal_params(fal), upstream_settings)
    with pytest.raises(EngineError) as info:
        engine.generate(request(tmp_path), Sink())
    assert "could not generate" in info.value.message
    assert "crashed" not in info.value.message  # upstream text stays in the logs


def test_cancel_is_sent_upstream(fal: FakeFal, upstream_settings: Settings, tmp_path: Path) -> None:
    fal.run_s = 30
    engine = make_engine("fal", fal_params(fal), upstream_settings)
    sink = Sink()

    def cancel_when_running() -> None:
        wait_for(lambda: any(s is Stage.GENERATING for s in sink.stages()))
        sink.stop = "canceled"

    import threading

    threading.Thread(target=cancel_when_running, daemon=True).start()
    with pytest.raises(Interrupted):
        engine.generate(request(tmp_path), sink)
    assert len(fal.calls("cancel")) == 1
    assert fal.job().canceled


def test_rate_limited_submit_waits_retry_after(
    fal: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    fal.fail("submit", Fault(status=429, headers={"Retry-After": "1"}))
    engine = make_engine("fal", fal_params(fal), upstream_settings)
    engine.generate(request(tmp_path), Sink())
    first, second = fal.calls("submit")
    assert second.at - first.at >= 0.95


def test_expired_result_link_is_refetched(
    fal: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    assert fal.cdn is not None
    fal.cdn.expired_links = 1
    engine = make_engine("fal", fal_params(fal), upstream_settings)
    out = engine.generate(request(tmp_path), Sink())
    assert out.frames == 8
    assert len(fal.calls("result")) == 2 and len(fal.cdn.calls("file")) == 2


def test_result_links_pass_the_ssrf_guard(
    fal: FakeFal, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAL_KEY", "k")
    engine = make_engine("fal", fal_params(fal), settings)  # no test allow-list: loopback refused
    with pytest.raises(EngineError) as info:
        engine.generate(request(tmp_path), Sink())
    assert "could not be downloaded" in info.value.message
    assert fal.cdn is not None and not fal.cdn.calls("file")  # refused before connecting


def test_webhook_link_is_sent_and_a_call_ends_the_long_wait(
    fal: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    params = fal_params(fal, webhook=True, webhook_poll_interval=60)
    engine = make_engine("fal", params, upstream_settings)
    hook = "http://127.0.0.1:9/hooks/fal/task_test?sig=abc"  # refused: the fake notes that
    told = [0]

    def woken() -> bool:
        with fal.lock:
            arrived = len(fal.webhooks)
        fresh, told[0] = arrived > told[0], arrived
        return fresh

    saved = Saved()
    req = replace(request(tmp_path, checkpoint=saved), callback_url=hook, woken=woken)
    started = time.monotonic()
    out = engine.generate(req, Sink())

    assert time.monotonic() - started < 20  # not the 60 s fallback
    assert probe(out.path).frames == 8
    assert fal.calls("submit")[0].query["fal_webhook"] == [hook]
    assert len(fal.calls("status")) <= 3
    assert any(state.get("webhook") is True for state in saved.history)


def test_webhook_without_a_callback_link_polls_as_usual(
    fal: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    params = fal_params(fal, webhook=True, webhook_poll_interval=60)
    engine = make_engine("fal", params, upstream_settings)  # no REEL_PUBLIC_URL: no link
    out = engine.generate(request(tmp_path), Sink())
    assert probe(out.path).frames == 8
    assert "fal_webhook" not in fal.calls("submit")[0].query
    assert fal.webhooks == []


def test_webhook_is_for_fal_only(upstream_settings: Settings) -> None:
    params = {"endpoint": "owner/model", "webhook": True}
    with pytest.raises(EngineConfigError):
        make_engine("replicate", params, upstream_settings)


def test_a_resumed_webhook_job_still_wakes_on_the_callback(
    fal: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    fal.run_s = 1.0
    params = fal_params(fal, webhook=True, webhook_poll_interval=60, poll_interval=60)
    hook = "http://127.0.0.1:9/hooks/fal/task_test?sig=abc"
    told = [0]

    def woken() -> bool:
        with fal.lock:
            arrived = len(fal.webhooks)
        fresh, told[0] = arrived > told[0], arrived
        return fresh

    def drain_when_submitted(stage: object, percent: float) -> None:
        if fal.jobs:
            raise Interrupted("draining")

    saved = Saved()
    first = replace(request(tmp_path, checkpoint=saved), callback_url=hook, woken=woken)
    with pytest.raises(Interrupted):
        make_engine("fal", params, upstream_settings).generate(first, drain_when_submitted)  # type: ignore[arg-type]
    assert saved.state["webhook"] is True

    again = replace(
        request(tmp_path, resume=saved.state, checkpoint=Saved()), callback_url=hook, woken=woken
    )
    started = time.monotonic()
    out = make_engine("fal", params, upstream_settings).generate(again, Sink())
    assert time.monotonic() - started < 20 and upstream_meta(out)["resumed"] is True
    assert len(fal.calls("submit")) == 1
