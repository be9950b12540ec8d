"""Engine name → implementation, imported lazily so heavy libraries load only when configured."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Final

from reel.config import Settings
from reel.engines.base import Capabilities, Engine, EngineConfigError

ENGINES: Final[Mapping[str, str]] = {
    "sandbox": "reel.engines.sandbox:SandboxEngine",
    "wan": "reel.engines.diffusers.wan:WanEngine",
    "ltx": "reel.engines.diffusers.ltx:LTXEngine",
    "ltx2": "reel.engines.diffusers.ltx2:LTX2Engine",
    # hosted and self-hosted video APIs (docs/upstreams.md)
    "fal": "reel.engines.upstream.engine:FalEngine",
    "replicate": "reel.engines.upstream.engine:ReplicateEngine",
    "openai_videos": "reel.engines.upstream.engine:OpenAIVideosEngine",
    "upstream": "reel.engines.upstream.engine:UpstreamEngine",
}


def engine_class(name: str) -> type[Engine]:
    try:
        target = ENGINES[name]
    except KeyError:
        raise EngineConfigError(
            f"unknown engine {name!r}; known engines: {', '.join(sorted(ENGINES))}"
        ) from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineConfigError(
            f"engine {name!r} needs optional packages that are not installed ({exc.name}); "
            "see docs/models.md"
        ) from exc
    cls: type[Engine] = getattr(module, attr)
    return cls


def load_engine(name: str, *, params: Mapping[str, object], settings: Settings) -> Engine:
    return engine_class(name)(params=params, settings=settings)  # type: ignore[call-arg]


def check_engine(name: str, *, params: Mapping[str, object], settings: Settings) -> Capabilities:
    """Check a model's configuration without loading it; what it can do.

    Engines that need checking (files on disk, optional packages) define a ``check``
    classmethod taking ``params`` and ``settings``; the others can do everything.
    """
    check = getattr(engine_class(name), "check", None)
    if check is None:
        return Capabilities()
    caps = check(params=params, settings=settings)
    if not isinstance(caps, Capabilities):
        raise TypeError(f"{name}.check returned {caps!r}, not Capabilities")
    return caps
