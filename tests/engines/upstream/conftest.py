"""Fixtures for upstream engine tests: fake upstream servers and a recording progress sink."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from reel.config import Settings
from reel.engines.base import EngineOutput, GenerationRequest, Interrupted
from reel.engines.registry import load_engine
from reel.engines.upstream.engine import UpstreamEngine
from reel.types import Mode, Stage
from tests.fakeupstreams import FakeFal, FakeReplicate, FakeVideos, tiny_mp4

FAST = {"poll_interval": 0.05, "request_timeout": 2.0, "poll_error_budget": 2.0}


@pytest.fixture(scope="session")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return tiny_mp4(tmp_path_factory.mktemp("mp4"))


@pytest.fixture
def fal(mp4: bytes) -> Iterator[FakeFal]:
    with FakeFal(mp4) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def fal2(mp4: bytes) -> Iterator[FakeFal]:
    with FakeFal(mp4) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def replicate(mp4: bytes) -> Iterator[FakeReplicate]:
    with FakeReplicate(mp4) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def videos(mp4: bytes) -> Iterator[FakeVideos]:
    with FakeVideos(mp4) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def videos2(mp4: bytes) -> Iterator[FakeVideos]:
    with FakeVideos(mp4) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def upstream_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FAKE_FAL_KEY", "fal-secret-123")
    monkeypatch.setenv("FAKE_REPLICATE_TOKEN", "r8-secret-456")
    return Settings(**{**settings.model_dump(), "upstream_fetch_allow_hosts": ("127.0.0.1",)})


class Sink:
    """Records progress; raises ``Interrupted(reason)`` once ``stop`` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[Stage, float]] = []
        self.stop: str | None = None
        self.lock = threading.Lock()

    def __call__(self, stage: Stage, percent: float) -> None:
        with self.lock:
            self.calls.append((stage, percent))
        if self.stop:
            raise Interrupted(self.stop)

    def stages(self) -> list[Stage]:
        return [s for s, _ in self.calls]


class Saved:
    """A ``checkpoint`` target: keeps the last state, like the task row does."""

    def __init__(self) -> None:
        self.state: dict[str, object] = {}
        self.history: list[dict[str, object]] = []

    def __call__(self, state: Mapping[str, object]) -> None:
        self.state = dict(state)
        self.history.append(dict(state))


def make_engine(name: str, params: Mapping[str, object], settings: Settings) -> UpstreamEngine:
    engine = load_engine(name, params=params, settings=settings)
    assert isinstance(engine, UpstreamEngine)
    return engine


def request(
    tmp: Path,
    *,
    mode: Mode = Mode.TEXT_TO_VIDEO,
    image_url: str | None = None,
    image_png: bytes | None = None,
    resume: Mapping[str, object] | None = None,
    checkpoint: Saved | None = None,
    prompt: str = "a red fox in the snow",
) -> GenerationRequest:
    image_path = None
    if image_png is not None:
        image_path = tmp / "start.png"
        image_path.write_bytes(image_png)
    return GenerationRequest(
        task_id="task_test",
        prompt=prompt,
        mode=mode,
        width=1280,
        height=720,
        duration_s=10,
        output_path=tmp / "out.mp4",
        image_path=image_path,
        seed=1234,
        image_url=image_url,
        resume=resume or {},
        checkpoint=checkpoint,
    )


def upstream_meta(output: EngineOutput) -> dict[str, object]:
    meta = output.metadata["upstream"]
    assert isinstance(meta, dict)
    return meta
