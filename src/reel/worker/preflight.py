"""Checks a worker runs before taking tasks: every model it serves is usable as configured.

Each engine checks its own ``params`` and files without loading weights (a missing download
is named file by file). A model that serves a tier must also do both modes: the tier takes
``imageToVideo`` requests, and 10/15 s videos are chained segment by segment, each one
image-to-video from the last frame of the one before. A model that makes only some lengths
(an upstream's ``durations``) must reach every length its tiers sell on either surface: a
shorter video must never be sold as the longer one.
"""

from __future__ import annotations

from collections.abc import Iterable

from reel.config import Settings
from reel.engines.base import Capabilities, EngineConfigError
from reel.engines.registry import check_engine
from reel.service import pricing
from reel.service.catalog import Catalog
from reel.types import Tier

__all__ = ["advertised_operations", "check_models"]


def check_models(
    catalog: Catalog, models: Iterable[str], settings: Settings
) -> dict[str, Capabilities]:
    """Each model's capabilities; raise :class:`EngineConfigError` naming the first model that
    cannot serve as configured."""
    found: dict[str, Capabilities] = {}
    for name in models:
        spec = catalog.models[name]
        try:
            caps = check_engine(spec.engine, params=spec.params, settings=settings)
        except EngineConfigError as exc:
            raise EngineConfigError(f"model {name!r}: {exc.message}") from exc
        found[name] = caps
        tiers = sorted(tier.value for tier, model in catalog.tiers.items() if model == name)
        if not tiers:
            continue
        if caps.durations is not None:
            sold = set().union(*(sold_durations(Tier(t)) for t in tiers))
            longest = max(caps.durations, default=0)
            missing = sorted(d for d in sold if d > longest)
            if missing:
                raise EngineConfigError(
                    f"model {name!r} serves tier(s) {', '.join(tiers)}, which sell "
                    f"{', '.join(f'{d} s' for d in missing)} videos, but its upstreams make at "
                    f"most {longest} s (their durations). Add an upstream that makes those "
                    "lengths, or map the tier to another model (docs/upstreams.md)"
                )
        lacking = [
            mode
            for mode, able in (
                ("text-to-video", caps.text_to_video),
                ("image-to-video", caps.image_to_video),
            )
            if not able
        ]
        if lacking:
            raise EngineConfigError(
                f"model {name!r} serves tier(s) {', '.join(tiers)} but cannot do "
                f"{' or '.join(lacking)}. A tier needs both: it accepts imageToVideo requests, "
                "and 10/15 s videos are chained from ~5 s image-to-video segments. Give the "
                "model an image-to-video capable checkpoint (e.g. Wan2.2-TI2V-5B, or "
                "i2v_model_dir for Wan 2.1) or map the tier to another model (docs/models.md)"
            )
    return found


def advertised_operations(caps: Capabilities) -> list[str]:
    """What a model does besides generating, as a worker advertises it (``workers.operations``)
    for the API, which never loads an engine, to refuse what no live worker can do."""
    flags = {"extend": caps.extend, "edit": caps.edit, "references": caps.references}
    return [op for op, able in flags.items() if able]


def sold_durations(tier: Tier) -> set[int]:
    """Every length a tier is sold at: the Sora 2 contract's and ``/v1/videos``'."""
    return {s for t, s in pricing.CREDITS if t == tier} | {
        s for t, s in pricing.OPENAI_CREDITS if t == tier
    }
