"""What each tier costs and what it delivers: data, not code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from reel.service.catalog import Catalog
from reel.service.errors import InvalidParameter
from reel.types import Aspect, Tier

#: Allowed durations, in seconds, as the contract spells them.
DURATIONS: Final = (10, 15)
DEFAULT_DURATION: Final = 10

#: Credits per (tier, seconds), from the contract's table.
CREDITS: Final[Mapping[tuple[Tier, int], int]] = {
    (Tier.SORA2, 10): 4,
    (Tier.SORA2, 15): 8,
    (Tier.PRO_STANDARD, 10): 60,
    (Tier.PRO_STANDARD, 15): 100,
    (Tier.PRO_HIGH, 10): 120,
    (Tier.PRO_HIGH, 15): 240,
}

#: The advertised output size per tier, as (short side, long side).
TIER_SIZE: Final[Mapping[Tier, tuple[int, int]]] = {
    Tier.SORA2: (720, 1280),
    Tier.PRO_STANDARD: (720, 1280),
    Tier.PRO_HIGH: (1080, 1920),
}


def price(tier: Tier, seconds: int) -> int:
    return CREDITS[(tier, seconds)]


def frame_size(tier: Tier, aspect: Aspect) -> tuple[int, int]:
    """(width, height) of the tier's output in the given orientation."""
    short, long = TIER_SIZE[tier]
    return (short, long) if aspect is Aspect.PORTRAIT else (long, short)


# --- the OpenAI-compatible surface (/v1/videos) ---------------------------------------------

#: Durations OpenAI's Videos API accepts, in seconds.
OPENAI_SECONDS: Final = (4, 8, 12)
OPENAI_DEFAULT_SECONDS: Final = 4
OPENAI_DEFAULT_MODEL: Final = "sora-2"
OPENAI_DEFAULT_SIZE: Final = "720x1280"

#: Credits per (tier, seconds) on /v1/videos: the tier's 10 s price per 10 s, rounded up to
#: whole credits per 4 s step (so sora2 is 2 per 4 s, not 1.6).
OPENAI_CREDITS: Final[Mapping[tuple[Tier, int], int]] = {
    (Tier.SORA2, 4): 2,
    (Tier.SORA2, 8): 4,
    (Tier.SORA2, 12): 6,
    (Tier.PRO_STANDARD, 4): 24,
    (Tier.PRO_STANDARD, 8): 48,
    (Tier.PRO_STANDARD, 12): 72,
    (Tier.PRO_HIGH, 4): 48,
    (Tier.PRO_HIGH, 8): 96,
    (Tier.PRO_HIGH, 12): 144,
}

#: (OpenAI model, size) → tier. Sizes are "WIDTHxHEIGHT".
OPENAI_TIERS: Final[Mapping[tuple[str, str], Tier]] = {
    ("sora-2", "720x1280"): Tier.SORA2,
    ("sora-2", "1280x720"): Tier.SORA2,
    ("sora-2-pro", "720x1280"): Tier.PRO_STANDARD,
    ("sora-2-pro", "1280x720"): Tier.PRO_STANDARD,
    ("sora-2-pro", "1024x1792"): Tier.PRO_HIGH,
    ("sora-2-pro", "1792x1024"): Tier.PRO_HIGH,
}

#: A public models-file model asked for by name costs at least the tier of the size it makes
#: (and at least the costliest tier it serves; or its own ``price`` from the models file).
OPERATOR_MODEL_TIERS: Final[Mapping[str, Tier]] = {
    "720x1280": Tier.SORA2,
    "1280x720": Tier.SORA2,
    "1024x1792": Tier.PRO_HIGH,
    "1792x1024": Tier.PRO_HIGH,
}

#: How a tier is named on /v1/videos when a seed-surface task is shown there.
TIER_OPENAI_MODEL: Final[Mapping[Tier, str]] = {
    Tier.SORA2: "sora-2",
    Tier.PRO_STANDARD: "sora-2-pro",
    Tier.PRO_HIGH: "sora-2-pro",
}


def openai_price(tier: Tier, seconds: int) -> int:
    return OPENAI_CREDITS[(tier, seconds)]


def costliest(tiers: Iterable[Tier]) -> Tier:
    """The tier with the highest ``/v1`` price among ``tiers`` (the same at every length)."""
    return max(tiers, key=lambda tier: OPENAI_CREDITS[(tier, OPENAI_DEFAULT_SECONDS)])


def parse_size(size: str) -> tuple[int, int]:
    """ "1280x720" → (1280, 720)."""
    width, _, height = size.partition("x")
    return int(width), int(height)


def openai_tier(catalog: Catalog, model: object, size: str) -> tuple[Tier, str | None]:
    """The tier that prices ``/v1`` ``model`` at ``size``, and the models-file model to run
    (``None``: the tier's). ``model`` is ``sora-2`` (when absent), ``sora-2-pro`` or a public
    model of the models file; anything else is refused (400) without naming the operator's
    other models. Every create, extension and edit of ``/v1`` asks here."""
    model = model or OPENAI_DEFAULT_MODEL
    if not isinstance(model, str):
        raise InvalidParameter("'model' must be a string", param="model")
    tier = OPENAI_TIERS.get((model, size))
    if tier is not None:
        return tier, None
    if model in TIER_OPENAI_MODEL.values():
        sizes = sorted(s for (m, s) in OPENAI_TIERS if m == model)
        raise InvalidParameter(
            f"Invalid value for 'size': {model} supports {', '.join(sizes)}",
            param="size",
            allowed=sizes,
        )
    if model in catalog.offers:
        # Never below what the model's own tiers sell it for, nor below the size's tier.
        served = catalog.tiers_served_by(model)
        return costliest([OPERATOR_MODEL_TIERS[size], *served]), model
    # Only the public names: the operator's other model names stay private.
    known = sorted(set(TIER_OPENAI_MODEL.values()))
    raise InvalidParameter(
        f"Invalid value for 'model': expected {' or '.join(known)}, "
        "or a model this server offers by name",
        param="model",
        allowed=known,
    )
