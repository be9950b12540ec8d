"""Rate limits on either store: a key's window and its account's are checked together, and a
refused request is counted in neither."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from reel.service.errors import RateLimited
from reel.service.ratelimit import Bucket, RateLimiter
from tests import services as real

STORES = ["memory", pytest.param("redis", marks=pytest.mark.services)]


@pytest.fixture(params=STORES)
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    if request.param == "memory":
        yield RateLimiter(create="3/hour", status="9/minute")
        return
    prefix = f"reeltest{secrets.token_hex(4)}"
    uri = real.check_redis()
    yield RateLimiter(create="3/hour", status="9/minute", storage_uri=uri, key_prefix=prefix)
    real.delete_redis_prefix(prefix)


def test_a_full_key_answers_its_quota_and_retry_after(limiter: RateLimiter) -> None:
    quotas = [limiter.hit(Bucket.CREATE, "key_1") for _ in range(3)]
    assert [q.remaining for q in quotas] == [2, 1, 0]
    assert all(3599 <= q.reset_in <= 3600 and q.window == 3600 for q in quotas)
    with pytest.raises(RateLimited) as refused:
        limiter.hit(Bucket.CREATE, "key_1")
    assert 3590 < refused.value.retry_after <= 3600
    assert refused.value.headers["RateLimit-Remaining"] == "0"
    assert refused.value.headers["Retry-After"] == str(refused.value.retry_after)
    assert limiter.peek(Bucket.STATUS, "key_1").remaining == 9  # its own budget


def test_an_account_refusal_counts_against_neither_window(limiter: RateLimiter) -> None:
    account = ("acct_1", 2)
    assert limiter.hit(Bucket.CREATE, "key_1", account=account).remaining == 2
    assert limiter.hit(Bucket.CREATE, "key_2", account=account).remaining == 2
    with pytest.raises(RateLimited) as refused:
        limiter.hit(Bucket.CREATE, "key_1", account=account)
    assert "Account rate limit" in refused.value.message
    assert 3590 < refused.value.retry_after <= 3600
    assert "RateLimit-Remaining" not in refused.value.headers
    assert limiter.peek(Bucket.CREATE, "key_1").remaining == 2  # the refusal was not counted
    assert limiter.hit(Bucket.CREATE, "key_1").remaining == 1  # without the account's limit


def test_a_key_refusal_does_not_count_against_the_account(limiter: RateLimiter) -> None:
    for _ in range(3):
        limiter.hit(Bucket.CREATE, "key_1")
    with pytest.raises(RateLimited, match="Rate limit exceeded"):
        limiter.hit(Bucket.CREATE, "key_1", account=("acct_1", 1))
    assert limiter.hit(Bucket.CREATE, "key_2", account=("acct_1", 1)).remaining == 2


def test_an_account_limit_of_zero_refuses_every_creation(limiter: RateLimiter) -> None:
    with pytest.raises(RateLimited) as refused:
        limiter.hit(Bucket.CREATE, "key_1", account=("acct_1", 0))
    assert refused.value.retry_after == 3600
    assert limiter.peek(Bucket.CREATE, "key_1").remaining == 3
