"""Failover between upstreams: what moves on, what waits, and what never runs twice."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from reel.config import Settings
from reel.engines.base import EngineError, Interrupted
from reel.engines.upstream import messages
from reel.types import Mode
from tests.engines.upstream.conftest import FAST, Saved, Sink, make_engine, request, upstream_meta
from tests.fakeupstreams import FakeFal, FakeReplicate, FakeVideos, Fault
from tests.imageserver import png_bytes


def fal_up(server: FakeFal, name: str, **extra: object) -> dict[str, object]:
    return {
        "kind": "fal",
        "name": name,
        "base_url": server.url,
        "endpoint": "fal-ai/ltx-video",
        "credentials_env": "FAKE_FAL_KEY",
        **FAST,
        **extra,
    }


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def outcomes(meta: dict[str, object]) -> list[tuple[object, object]]:
    attempts = meta["attempts"]
    assert isinstance(attempts, list)
    return [(a["upstream"], a["outcome"]) for a in attempts]


def test_server_errors_on_submit_move_to_the_next_upstream(
    fal: FakeFal, fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    fal.fail("submit", Fault(status=503), Fault(status=500))
    engine = make_engine(
        "upstream", {"upstreams": [fal_up(fal, "a"), fal_up(fal2, "b")]}, upstream_settings
    )
    out = engine.generate(request(tmp_path), Sink())
    assert len(fal.calls("submit")) == 2 and not fal.jobs  # retried once, nothing created
    assert len(fal2.jobs) == 1
    assert outcomes(upstream_meta(out)) == [("a", "submit_failed"), ("b", "completed")]


def test_connection_refused_moves_on_and_the_breaker_skips_it_next_time(
    fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    dead = {
        "kind": "fal",
        "name": "dead",
        "base_url": closed_port(),
        "endpoint": "x/y",
        "failure_threshold": 1,
        "cooldown": 60,
        **FAST,
    }
    engine = make_engine("upstream", {"upstreams": [dead, fal_up(fal2, "b")]}, upstream_settings)
    first = engine.generate(request(tmp_path), Sink())
    assert outcomes(upstream_meta(first))[0] == ("dead", "submit_failed")
    second = engine.generate(request(tmp_path), Sink())
    assert outcomes(upstream_meta(second)) == [("b", "completed")]  # breaker open: not even tried


def test_the_breaker_lets_a_trial_through_after_its_cooldown(
    fal: FakeFal, fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    fal.fail("submit", Fault(status=500))
    ups = [fal_up(fal, "a", failure_threshold=1, cooldown=2.5, submit_retries=0), fal_up(fal2, "b")]
    engine = make_engine("upstream", {"upstreams": ups}, upstream_settings)
    opened = time.monotonic()
    engine.generate(request(tmp_path), Sink())
    engine.generate(request(tmp_path), Sink())
    assert len(fal.calls("submit")) == 1  # open
    time.sleep(max(0.0, opened + 2.6 - time.monotonic()))
    out = engine.generate(request(tmp_path), Sink())
    assert outcomes(upstream_meta(out)) == [("a", "completed")]  # the trial succeeded: closed


def test_long_retry_after_defers_the_upstream_and_moves_on(
    fal: FakeFal, fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    fal.fail("submit", Fault(status=429, headers={"Retry-After": "120"}))
    engine = make_engine(
        "upstream", {"upstreams": [fal_up(fal, "a"), fal_up(fal2, "b")]}, upstream_settings
    )
    out = engine.generate(request(tmp_path), Sink())
    assert outcomes(upstream_meta(out)) == [("a", "rate_limited"), ("b", "completed")]
    engine.generate(request(tmp_path), Sink())
    assert len(fal.calls("submit")) == 1  # still inside its Retry-After
    assert len(fal2.jobs) == 2


def test_timeout_cancels_before_trying_the_next_upstream(
    fal: FakeFal, fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    fal.run_s = 30
    ups = [fal_up(fal, "slow", timeout=0.6), fal_up(fal2, "b")]
    engine = make_engine("upstream", {"upstreams": ups}, upstream_settings)
    out = engine.generate(request(tmp_path), Sink())
    assert fal.job().canceled
    cancel, second = fal.calls("cancel")[0], fal2.calls("submit")[0]
    assert cancel.at < second.at  # never on two upstreams at once
    assert outcomes(upstream_meta(out)) == [("slow", "timeout_canceled"), ("b", "completed")]


def test_a_lost_submission_that_cannot_be_looked_up_fails_instead_of_moving_on(
    fal: FakeFal, fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    fal.fail("submit", Fault(status=0, after_create=True, drop=True))
    engine = make_engine(
        "upstream", {"upstreams": [fal_up(fal, "a"), fal_up(fal2, "b")]}, upstream_settings
    )
    with pytest.raises(EngineError) as info:
        engine.generate(request(tmp_path), Sink())
    assert info.value.message == messages.UNCERTAIN
    assert len(fal.jobs) == 1 and not fal2.seen  # the fal job may run; nothing else does


def test_a_slow_submission_is_found_and_adopted_not_repeated(
    replicate: FakeReplicate, fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    replicate.fail("submit", Fault(status=0, delay=1.5))  # creates the job after our 1 s timeout
    rep = {
        "kind": "replicate",
        "name": "r",
        "base_url": replicate.url,
        "endpoint": "o/m",
        **FAST,
        "request_timeout": 1.0,
    }
    engine = make_engine(
        "upstream", {"upstreams": [rep, fal2_up := fal_up(fal2, "b")]}, upstream_settings
    )
    assert fal2_up
    out = engine.generate(request(tmp_path), Sink())
    assert len(replicate.calls("submit")) == 1 and len(replicate.calls("list")) >= 2
    assert outcomes(upstream_meta(out)) == [
        ("r", "found_after_lost_submission"),
        ("r", "completed"),
    ]
    assert not fal2.seen


def test_a_dropped_submission_found_absent_moves_on(
    replicate: FakeReplicate, fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    replicate.fail("submit", Fault(status=0, drop=True))  # dropped before creating anything
    rep = {
        "kind": "replicate",
        "name": "r",
        "base_url": replicate.url,
        "endpoint": "o/m",
        **FAST,
        "request_timeout": 0.3,
    }
    engine = make_engine("upstream", {"upstreams": [rep, fal_up(fal2, "b")]}, upstream_settings)
    out = engine.generate(request(tmp_path), Sink())
    assert not replicate.jobs and len(replicate.calls("list")) >= 3
    assert outcomes(upstream_meta(out)) == [("r", "submit_lost"), ("b", "completed")]


def test_upstream_reported_failure_does_not_fail_over(
    fal: FakeFal, fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    fal.fail_jobs = True
    engine = make_engine(
        "upstream", {"upstreams": [fal_up(fal, "a"), fal_up(fal2, "b")]}, upstream_settings
    )
    with pytest.raises(EngineError) as info:
        engine.generate(request(tmp_path), Sink())
    assert info.value.message == messages.JOB_FAILED
    assert not fal2.seen


def test_a_silent_upstream_that_cannot_be_canceled_fails_the_task(
    fal: FakeFal, fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    fal.run_s = 30
    fal.fail("status", *[Fault(status=502) for _ in range(200)])
    fal.fail("cancel", Fault(status=502))
    engine = make_engine(
        "upstream",
        {"upstreams": [fal_up(fal, "a", poll_error_budget=0.5), fal_up(fal2, "b")]},
        upstream_settings,
    )
    with pytest.raises(EngineError) as info:
        engine.generate(request(tmp_path), Sink())
    assert info.value.message == messages.LOST
    assert not fal2.seen


def test_modes_and_missing_credentials_route_around_an_upstream(
    fal: FakeFal, fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    text_only = fal_up(fal, "t2v", modes=["textToVideo"])
    no_key = fal_up(fal, "nokey", credentials_env="FAKE_UNSET_KEY")
    i2v = fal_up(fal2, "i2v", image="data_uri", image_endpoint="fal-ai/ltx-video/image-to-video")
    engine = make_engine("upstream", {"upstreams": [text_only, no_key, i2v]}, upstream_settings)
    out = engine.generate(
        request(tmp_path, mode=Mode.IMAGE_TO_VIDEO, image_png=png_bytes()), Sink()
    )
    assert outcomes(upstream_meta(out)) == [("i2v", "completed")]
    assert not fal.seen
    assert fal2.calls("submit")[0].path == "/fal-ai/ltx-video/image-to-video"


def test_draining_leaves_the_job_running_and_the_next_attempt_resumes_it(
    videos: FakeVideos, upstream_settings: Settings, tmp_path: Path
) -> None:
    videos.run_s = 1.0
    params = {"base_url": videos.url, **FAST}
    saved = Saved()
    sink = Sink()
    engine = make_engine("openai_videos", params, upstream_settings)
    sink.stop = None

    def drain_when_submitted(stage: object, percent: float) -> None:
        if videos.jobs:
            raise Interrupted("draining")

    with pytest.raises(Interrupted):
        engine.generate(request(tmp_path, checkpoint=saved), drain_when_submitted)  # type: ignore[arg-type]
    job = videos.job()
    assert not job.canceled and not videos.calls("cancel")
    assert saved.state["phase"] == "submitted"

    fresh = make_engine("openai_videos", params, upstream_settings)  # another worker process
    out = fresh.generate(request(tmp_path, resume=saved.state, checkpoint=Saved()), sink)
    assert len(videos.calls("submit")) == 1  # adopted, not resubmitted
    meta = upstream_meta(out)
    assert meta["resumed"] is True and meta["request_id"] == job.id


def test_resuming_an_interrupted_fal_submission_fails_safe(
    fal: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    state = {
        "upstream": "fal:fal-ai/ltx-video",
        "server": fal.url,
        "phase": "submitting",
        "since": 0,
    }
    engine = make_engine(
        "fal", {"base_url": fal.url, "endpoint": "fal-ai/ltx-video", **FAST}, upstream_settings
    )
    with pytest.raises(EngineError) as info:
        engine.generate(request(tmp_path, resume=state), Sink())
    assert info.value.message == messages.UNCERTAIN
    assert not fal.seen


def test_a_timed_out_job_that_will_not_stop_fails_the_task(
    fal: FakeFal, fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    fal.run_s = 30
    fal.fail("cancel", Fault(status=502))
    ups = [fal_up(fal, "slow", timeout=0.5), fal_up(fal2, "b")]
    engine = make_engine("upstream", {"upstreams": ups}, upstream_settings)
    with pytest.raises(EngineError) as info:
        engine.generate(request(tmp_path), Sink())
    assert info.value.message == messages.TIMED_OUT
    assert not fal2.seen  # still running on "slow": never started elsewhere


def test_a_malformed_submit_answer_counts_as_unknown(
    fal: FakeFal, fal2: FakeFal, upstream_settings: Settings, tmp_path: Path
) -> None:
    fal.fail("submit", Fault(malformed=True, after_create=True))
    engine = make_engine(
        "upstream", {"upstreams": [fal_up(fal, "a"), fal_up(fal2, "b")]}, upstream_settings
    )
    with pytest.raises(EngineError) as info:
        engine.generate(request(tmp_path), Sink())
    assert info.value.message == messages.UNCERTAIN
    assert not fal2.seen
