"""Per-key limits in Redis: one window shared by every API process; an outage answers 503."""

from __future__ import annotations

import secrets

import pytest

from reel.service.errors import RateLimited, ServiceBusy
from reel.service.ratelimit import Bucket, RateLimiter
from tests import services as real


@pytest.mark.services
def test_two_limiters_share_one_window() -> None:
    url = real.check_redis()
    prefix = f"reeltest{secrets.token_hex(4)}"
    a, b = (
        RateLimiter(create="5/hour", status="9/minute", storage_uri=url, key_prefix=prefix)
        for _ in range(2)
    )
    try:
        outcomes = []
        for i in range(8):
            try:
                (a if i % 2 else b).hit(Bucket.CREATE, "key_1")
                outcomes.append(True)
            except RateLimited:
                outcomes.append(False)
        assert outcomes == [True] * 5 + [False] * 3
        assert a.peek(Bucket.CREATE, "key_2").remaining == 5  # other keys are untouched
    finally:
        real.delete_redis_prefix(prefix)


def test_unreachable_redis_is_service_busy() -> None:
    limiter = RateLimiter(
        create="5/hour", status="9/minute", storage_uri=f"redis://127.0.0.1:{real.free_port()}/0"
    )
    with pytest.raises(ServiceBusy):
        limiter.hit(Bucket.CREATE, "key_1")
