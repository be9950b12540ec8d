"""What each tier costs and what it delivers: data, not code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

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
