"""Per-key rate limits (the `limits` library): memory store for one API process, Redis for many."""

from __future__ import annotations

import math
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from reel.service.clock import now
from reel.service.errors import RateLimited, ServiceBusy


class Bucket(StrEnum):
    CREATE = "create"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Quota:
    """What a response tells the client about its limit (IETF RateLimit headers)."""

    limit: int
    remaining: int
    reset_in: int
    window: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_in),
            "RateLimit-Policy": f"{self.limit};w={self.window}",
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_in),
        }


class RateLimiter:
    def __init__(
        self,
        *,
        create: str,
        status: str,
        storage_uri: str = "memory://",
        key_prefix: str = "reel",
    ) -> None:
        self._items: dict[Bucket, RateLimitItem] = {
            Bucket.CREATE: parse(create),
            Bucket.STATUS: parse(status),
        }
        self._limiter = moving_window(storage_uri, key_prefix=key_prefix)

    def item(self, bucket: Bucket) -> RateLimitItem:
        return self._items[bucket]

    def hit(self, bucket: Bucket, key_id: str) -> Quota:
        """Count one request; raise :class:`RateLimited` (with the quota) when over."""
        item = self._items[bucket]
        try:
            allowed = self._limiter.hit(item, bucket.value, key_id)
        except StorageError as exc:
            raise _unavailable() from exc
        quota = self.peek(bucket, key_id)
        if not allowed:
            raise RateLimited(
                f"Rate limit exceeded ({item.amount} per {_window_text(item)})",
                retry_after=max(1, quota.reset_in),
                headers=quota.headers(),
            )
        return quota

    def hit_account(self, account_id: str, per_hour: int) -> None:
        """Count one creation against an account's own hourly limit (all its keys together)."""
        item = parse(f"{per_hour}/hour")
        try:
            allowed = per_hour > 0 and self._limiter.hit(item, "account-create", account_id)
            stats = self._limiter.get_window_stats(item, "account-create", account_id)
        except StorageError as exc:
            raise _unavailable() from exc
        if not allowed:
            raise RateLimited(
                f"Account rate limit exceeded ({per_hour} creations per hour)",
                retry_after=max(1, math.ceil(stats.reset_time - now())),
            )

    def peek(self, bucket: Bucket, key_id: str) -> Quota:
        item = self._items[bucket]
        try:
            stats = self._limiter.get_window_stats(item, bucket.value, key_id)
        except StorageError as exc:
            raise _unavailable() from exc
        reset_in = max(0, math.ceil(stats.reset_time - now()))
        return Quota(item.amount, max(0, stats.remaining), reset_in, item.get_expiry())


class FailureThrottle:
    """Failed attempts per client address (admin sign-in), in the same store as the rate
    limits: with Redis, every API process counts the same failures.

    It throttles failures only; whether a correct attempt may pass is the caller's choice.
    When the store is unreachable it fails closed: every address counts as throttled.
    """

    def __init__(
        self, rate: str, *, storage_uri: str, key_prefix: str = "reel", namespace: str
    ) -> None:
        self._item = parse(rate)
        self._namespace = namespace
        self._limiter = moving_window(storage_uri, key_prefix=key_prefix)

    def blocked(self, client: str) -> bool:
        try:
            return not self._limiter.test(self._item, self._namespace, client)
        except StorageError:
            return True

    def failed(self, client: str) -> None:
        with suppress(StorageError):
            self._limiter.hit(self._item, self._namespace, client)


def moving_window(storage_uri: str, *, key_prefix: str) -> MovingWindowRateLimiter:
    """A limiter on ``memory://`` (this process) or Redis (shared by every API process)."""
    options: dict[str, str | bool] = {}
    if storage_uri.startswith(("redis", "rediss")):
        # Shared by every API process; a Redis outage answers 503 instead of a stack trace.
        options = {"key_prefix": f"{key_prefix}:ratelimit", "wrap_exceptions": True}
    return MovingWindowRateLimiter(storage_from_string(storage_uri, **options))


def _unavailable() -> ServiceBusy:
    return ServiceBusy("The rate limit store is unavailable; retry shortly")


def _window_text(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
