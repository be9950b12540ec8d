"""One adapter per upstream API; each speaks its provider's documented request/response shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from reel.engines.upstream.providers.base import Provider
from reel.engines.upstream.providers.fal import FalProvider
from reel.engines.upstream.providers.openai_videos import OpenAIVideosProvider
from reel.engines.upstream.providers.replicate import ReplicateProvider

PROVIDERS: Final[Mapping[str, Provider]] = {
    "fal": FalProvider(),
    "replicate": ReplicateProvider(),
    "openai_videos": OpenAIVideosProvider(),
}

__all__ = ["PROVIDERS", "Provider"]
