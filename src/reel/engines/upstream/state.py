"""What one task's run through the upstreams shares with the jobs it follows.

:class:`Upstream` is one configured upstream, held by the engine for its life; :class:`RunState`
is one task's run (progress, waiting, the trail of attempts), used by the failover loop
(:mod:`.run`) and by each job it follows (:mod:`.follow`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from reel.config import Settings
from reel.engines.base import GenerationRequest, ProgressSink
from reel.engines.upstream.client import UpstreamClient
from reel.engines.upstream.health import Health
from reel.engines.upstream.providers import Provider
from reel.engines.upstream.spec import UpstreamSpec
from reel.net import FetchPolicy, Resolver
from reel.types import Stage

_SLICE: Final = 1.0  # longest sleep between progress calls, so a cancel is seen within ~1 s
_WAKE_SLICE: Final = 0.5  # how often a job followed by callback asks whether one came


@dataclass
class Upstream:
    """One configured upstream with its client and health, for the life of the engine."""

    spec: UpstreamSpec
    provider: Provider
    client: UpstreamClient
    health: Health
    #: Why this upstream cannot be used at all (missing credential), for the logs.
    unusable: str | None = None


class EngineContext(Protocol):
    """What a run needs of its engine (:class:`~.engine.UpstreamEngine`)."""

    name: str
    settings: Settings
    upstreams: list[Upstream]
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    rng: random.Random
    resolver: Resolver | None

    @property
    def download_policy(self) -> FetchPolicy: ...


class RunState:
    """One task's run through its engine's upstreams: the request, progress, the trail of
    attempts and the servers that failed it. Shared by the failover loop and each job it follows.
    """

    def __init__(self, engine: EngineContext, req: GenerationRequest, progress: ProgressSink):
        self.engine = engine
        self.req = req
        self.progress = progress
        self.clock = engine.clock
        settings = engine.settings
        budget = settings.task_time_limit - settings.upstream_download_timeout - 30
        self.deadline = self.clock() + max(60.0, budget)
        self.trail: list[dict[str, object]] = []
        self.failed_servers: set[str] = set()
        self.config_problems = 0
        self.resumed = False
        self._stage, self._percent = Stage.QUEUED, 0.0

    def report(self, stage: Stage, percent: float) -> None:
        self._stage, self._percent = stage, percent
        self.progress(stage, percent)

    def wait(self, seconds: float, *, woken: Callable[[], bool] | None = None) -> None:
        """Sleep, telling the sink every second so that a cancel or drain stops us promptly;
        with ``woken``, end early (checked every half second) once it says so."""
        end = self.clock() + max(0.0, seconds)
        step = _SLICE if woken is None else _WAKE_SLICE
        while True:
            self.progress(self._stage, self._percent)
            remaining = end - self.clock()
            if remaining <= 0 or (woken is not None and woken()):
                return
            self.engine.sleep(min(step, remaining))

    def checkpoint(self, state: dict[str, object]) -> None:
        if self.req.checkpoint is not None:
            self.req.checkpoint(state)

    def note(self, up: Upstream, server: str, outcome: str, **facts: object) -> None:
        self.trail.append({"upstream": up.spec.name, "server": server, "outcome": outcome, **facts})
