"""A shorter video is never sold as the longer one: every engine's output is probed before
delivery (short beyond a frame or two: failed and refunded, nothing stored), and a tier mapped
to an upstream model that cannot make its lengths is refused when a worker starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reel.config import Settings
from reel.engines.base import EngineConfigError
from reel.service.catalog import Catalog, load_catalog
from reel.types import TaskStatus
from reel.worker.lengths import SHORT_FRAMES_TOLERATED
from reel.worker.preflight import check_models
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.fakeupstreams import FakeVideos, tiny_mp4
from tests.worker.test_upstream_service import Stack, models_file, stack_for, vid_params

__all__ = ["stack_for"]  # the fixture, shared with the upstream service tests

FPS = 8  # tiny_mp4's frame rate
MakeStack = Callable[[str, dict[str, object]], Stack]


def run_ten_second_task(stack_for: MakeStack, tmp_path: Path, frames: int) -> tuple[Stack, str]:
    """A 10 s task through a fake OpenAI-compatible server whose result has ``frames``."""
    with FakeVideos(tiny_mp4(tmp_path, frames=frames), run_s=0.1) as server:
        stack = stack_for("openai_videos", vid_params(server))
        task_id = stack.generate(videoDuration="10")
        assert run_once(Runner(stack.services))
    return stack, task_id


def test_a_four_second_result_for_a_ten_second_task_fails_refunded(
    stack_for: MakeStack, tmp_path: Path
) -> None:
    stack, task_id = run_ten_second_task(stack_for, tmp_path, frames=4 * FPS)
    status = stack.status(task_id)
    assert status["status"] == "failed", status
    assert "shorter than requested (4.0 s of 10 s)" in str(status["error"])
    assert stack.ledger(task_id) == ["charge", "refund"]
    row = stack.row(task_id)
    assert row.status == TaskStatus.FAILED and row.video_key is None
    assert row.attempts == 1  # not retried: the same upstream would cut it short again
    assert not list(stack.services.storage.root.rglob("*.mp4"))  # type: ignore[attr-defined]


def test_a_frame_or_two_short_is_still_the_length_sold(
    stack_for: MakeStack, tmp_path: Path
) -> None:
    stack, task_id = run_ten_second_task(
        stack_for, tmp_path, frames=10 * FPS - SHORT_FRAMES_TOLERATED
    )
    assert stack.status(task_id)["status"] == "completed"
    assert stack.ledger(task_id) == ["charge"]


def _catalog_for(tmp_path: Path, params: dict[str, object]) -> tuple[Catalog, Settings]:
    path = models_file(tmp_path, "upstream", params)
    return load_catalog(path), Settings(data_dir=tmp_path, models_file=path)


@pytest.mark.parametrize(
    ("durations", "refused"),
    [
        ([[5]], "sell 8 s, 10 s, 12 s, 15 s videos, but its upstreams make at most 5 s"),
        ([[4, 8, 12]], "sell 15 s videos, but its upstreams make at most 12 s"),
        ([[5, 10], [15]], None),  # failover: together they reach every length
        ([[15]], None),  # a longer video may serve a shorter request
        ([[10, 15], []], None),  # an upstream without durations makes any length
    ],
)
def test_a_tier_its_upstreams_cannot_make_is_refused_at_start_up(
    tmp_path: Path, durations: list[list[int]], refused: str | None
) -> None:
    upstreams = [
        {"kind": "openai_videos", "name": f"u{n}", "base_url": "http://127.0.0.1:9", "durations": d}
        for n, d in enumerate(durations)
    ]
    catalog, settings = _catalog_for(tmp_path, {"upstreams": upstreams})
    if refused is None:
        check_models(catalog, ["hosted"], settings)
        return
    with pytest.raises(EngineConfigError, match=refused):
        check_models(catalog, ["hosted"], settings)


def test_a_task_is_only_sent_to_an_upstream_that_makes_its_length(
    stack_for: MakeStack, tmp_path: Path
) -> None:
    with (
        FakeVideos(tiny_mp4(tmp_path, frames=5 * FPS), run_s=0.1) as short,
        FakeVideos(tiny_mp4(tmp_path, frames=10 * FPS), run_s=0.1) as full,
    ):
        upstreams = [
            {"kind": "openai_videos", "name": "short", "durations": [5, 8], **vid_params(short)},
            {"kind": "openai_videos", "name": "full", **vid_params(full)},
        ]
        stack = stack_for("upstream", {"upstreams": upstreams})
        task_id = stack.generate(videoDuration="10")
        assert run_once(Runner(stack.services))
    assert stack.status(task_id)["status"] == "completed"
    assert not short.jobs and len(full.jobs) == 1
