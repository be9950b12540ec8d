"""Upstream engines: the Engine seam in front of fal.ai, Replicate and OpenAI-compatible servers.

``engine = "fal" | "replicate" | "openai_videos"`` takes one upstream's fields in ``params``;
``engine = "upstream"`` takes ``params.upstreams``, a list tried in order for failover. The
per-task logic (failover, polling, cancel, download) lives in :mod:`.run`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import ClassVar

import httpx

from reel.config import Settings
from reel.engines.base import (
    Capabilities,
    EngineConfigError,
    EngineOutput,
    GenerationRequest,
    ProgressSink,
)
from reel.engines.upstream.client import UpstreamClient
from reel.engines.upstream.health import Health
from reel.engines.upstream.messages import MISCONFIGURED
from reel.engines.upstream.providers import PROVIDERS
from reel.engines.upstream.run import TaskRun
from reel.engines.upstream.spec import Kind, UpstreamSpec, parse_params
from reel.engines.upstream.state import Upstream
from reel.net import FetchPolicy, Resolver
from reel.types import Mode

log = logging.getLogger("reel.engines.upstream")


class UpstreamEngine:
    """Generates through hosted or self-hosted video APIs, with failover between them."""

    engine_name: ClassVar[str] = "upstream"
    default_kind: ClassVar[Kind | None] = None

    def __init__(
        self,
        *,
        params: Mapping[str, object],
        settings: Settings,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            parsed = parse_params(params, default_kind=self.default_kind)
        except EngineConfigError as exc:  # the details are for the operator, not for users
            log.error("engine %s: %s", self.engine_name, exc.message)
            raise EngineConfigError(MISCONFIGURED) from exc
        self.name = parsed.label or self.engine_name
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.resolver = resolver
        self.transport = transport
        self.rng = random.Random()
        self.upstreams = [self._open(spec, settings, transport) for spec in parsed.upstreams]

    def _open(
        self, spec: UpstreamSpec, settings: Settings, transport: httpx.BaseTransport | None
    ) -> Upstream:
        unusable = None
        secret = None
        if spec.credentials_env:
            try:
                value = settings.upstream_secret(spec.credentials_env)
            except ValueError as exc:
                log.error("engine %s: upstream %s: %s", self.engine_name, spec.name, exc)
                raise EngineConfigError(MISCONFIGURED) from None
            if value is None:
                unusable = f"environment variable {spec.credentials_env} is not set"
                log.error("upstream %s is unusable: %s", spec.name, unusable)
            else:
                secret = value.get_secret_value()
        if spec.image == "url" and not settings.public_url and Mode.IMAGE_TO_VIDEO in spec.modes:
            log.warning(
                "upstream %s passes start images by URL but REEL_PUBLIC_URL is not set; "
                "image-to-video tasks will skip it",
                spec.name,
            )
        if spec.webhook and not settings.public_url:
            log.warning(
                "upstream %s has webhook = true but REEL_PUBLIC_URL is not set; polling instead",
                spec.name,
            )
        return Upstream(
            spec=spec,
            provider=PROVIDERS[spec.kind],
            client=UpstreamClient(spec, secret, transport=transport),
            health=Health(
                failure_threshold=spec.failure_threshold, cooldown=spec.cooldown, clock=self.clock
            ),
            unusable=unusable,
        )

    @classmethod
    def check(cls, *, params: Mapping[str, object], settings: Settings) -> Capabilities:
        """The models file's ``params`` without contacting anyone: its modes and lengths."""
        del settings  # credentials are looked up when the engine loads
        return parse_params(params, default_kind=cls.default_kind).capabilities()

    @property
    def download_policy(self) -> FetchPolicy:
        s = self.settings
        return FetchPolicy(
            allow_hosts=frozenset(s.upstream_fetch_allow_hosts),
            max_bytes=s.upstream_download_max_bytes,
            timeout=s.upstream_download_timeout,
        )

    def generate(self, req: GenerationRequest, progress: ProgressSink) -> EngineOutput:
        return TaskRun(self, req, progress).execute()

    def close(self) -> None:
        for upstream in self.upstreams:
            upstream.client.close()


class FalEngine(UpstreamEngine):
    engine_name = "fal"
    default_kind = "fal"


class ReplicateEngine(UpstreamEngine):
    engine_name = "replicate"
    default_kind = "replicate"


class OpenAIVideosEngine(UpstreamEngine):
    engine_name = "openai_videos"
    default_kind = "openai_videos"
