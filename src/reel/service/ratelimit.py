"""Per-key rate limits (moving windows): memory store for one API process, Redis for many."""

from __future__ import annotations

import math
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from reel.service.errors import RateLimited, ServiceBusy
from reel.service.ratelimit_store import Counted, Window, WindowState, window_store


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
    """Per-key windows per bucket, and an account's own hourly creation window, checked and
    counted together: on Redis in one round trip (see :mod:`reel.service.ratelimit_store`)."""

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
        self._store = window_store(limits_storage(storage_uri, key_prefix=key_prefix))

    def item(self, bucket: Bucket) -> RateLimitItem:
        return self._items[bucket]

    def hit(self, bucket: Bucket, key_id: str, *, account: tuple[str, int] | None = None) -> Quota:
        """Count one request of the key; with ``account`` (its id and creations allowed per
        hour), count it against the account's own window too, in the same check.

        Raises :class:`RateLimited` when either window is full; a refused request is counted
        in neither. The key's refusal carries its quota headers."""
        item = self._items[bucket]
        windows = [Window(item, (bucket.value, key_id))]
        if account is not None:
            account_id, per_hour = account
            windows.append(
                Window(parse(f"{max(0, per_hour)}/hour"), ("account-create", account_id))
            )
        counted = self._count(windows, hit=True)
        quota = _quota(item, counted.states[0])
        if counted.refused == 0:
            raise RateLimited(
                f"Rate limit exceeded ({item.amount} per {_window_text(item)})",
                retry_after=max(1, quota.reset_in),
                headers=quota.headers(),
            )
        if counted.refused == 1:
            raise RateLimited(
                f"Account rate limit exceeded ({windows[1].item.amount} creations per hour)",
                retry_after=max(1, math.ceil(counted.states[1].reset_in)),
            )
        return quota

    def peek(self, bucket: Bucket, key_id: str) -> Quota:
        item = self._items[bucket]
        counted = self._count([Window(item, (bucket.value, key_id))], hit=False)
        return _quota(item, counted.states[0])

    def _count(self, windows: list[Window], *, hit: bool) -> Counted:
        try:
            return self._store.count(windows, hit=hit)
        except StorageError as exc:
            raise _unavailable() from exc


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


def limits_storage(storage_uri: str, *, key_prefix: str) -> Storage:
    """A `limits` store on ``memory://`` (this process) or Redis (shared by every API process)."""
    options: dict[str, str | bool] = {}
    if storage_uri.startswith(("redis", "rediss")):
        # Shared by every API process; a Redis outage answers 503 instead of a stack trace.
        options = {"key_prefix": f"{key_prefix}:ratelimit", "wrap_exceptions": True}
    storage = storage_from_string(storage_uri, **options)
    if not isinstance(storage, Storage):
        raise ValueError(f"{storage_uri}: an async storage cannot hold these rate limits")
    return storage


def moving_window(storage_uri: str, *, key_prefix: str) -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(limits_storage(storage_uri, key_prefix=key_prefix))


def _quota(item: RateLimitItem, state: WindowState) -> Quota:
    reset_in = max(0, math.ceil(state.reset_in))
    return Quota(item.amount, state.remaining, reset_in, item.get_expiry())


def _unavailable() -> ServiceBusy:
    return ServiceBusy("The rate limit store is unavailable; retry shortly")


def _window_text(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
