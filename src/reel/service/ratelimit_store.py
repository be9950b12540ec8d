"""Where rate-limit windows are counted: one Lua script on Redis, or the `limits` library.

A request is checked against one or more moving windows (a key's, and its account's when the
account has a limit of its own). It is allowed only when every window has room, and then it
is counted in all of them; a refused request is counted in none.

On Redis the check and the count are one ``EVALSHA`` (the script is loaded again by redis-py
when the server answers ``NOSCRIPT``, e.g. after a restart or ``SCRIPT FLUSH``), atomic across
every API process, timed by the Redis server's clock. Its lists are the ones `limits` keeps
for a moving window (timestamps, newest first, under the same key names), so processes of an
older release count in the same windows. Every other store goes through `limits`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import RedisClusterStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from reel.service.clock import now


@dataclass(frozen=True, slots=True)
class Window:
    """One moving window a request counts in: its limit and whose it is."""

    item: RateLimitItem
    identifiers: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.item.key_for(*self.identifiers)


@dataclass(frozen=True, slots=True)
class WindowState:
    """A window after the check: requests left in it, seconds until its oldest one leaves."""

    remaining: int
    reset_in: float


@dataclass(frozen=True, slots=True)
class Counted:
    """The outcome for every window, in the order given; ``refused`` is the first full one."""

    states: tuple[WindowState, ...]
    refused: int | None


class WindowStore(Protocol):
    def count(self, windows: Sequence[Window], *, hit: bool) -> Counted:
        """Check ``windows`` and, with ``hit`` and room in all, count one request in each.

        Raises :class:`limits.errors.StorageError` when the store cannot be reached."""
        ...


def window_store(storage: Storage) -> WindowStore:
    """The script on a single Redis server (or Sentinel's master); `limits` elsewhere.

    A Redis Cluster keeps `limits` (a script's keys would have to share a hash slot)."""
    if isinstance(storage, RedisStorage) and not isinstance(storage, RedisClusterStorage):
        return RedisWindows(storage)
    return LimitsWindows(MovingWindowRateLimiter(storage))


class LimitsWindows:
    """Windows in a `limits` store: exact within this process (one lock around check and
    count), best effort across processes sharing a store other than Redis."""

    def __init__(self, limiter: MovingWindowRateLimiter) -> None:
        self._limiter = limiter
        self._lock = threading.Lock()

    def count(self, windows: Sequence[Window], *, hit: bool) -> Counted:
        limiter = self._limiter
        with self._lock:
            refused = self._hit(windows) if hit else None
            stats = [limiter.get_window_stats(w.item, *w.identifiers) for w in windows]
        at = now()
        states = tuple(WindowState(max(0, s.remaining), s.reset_time - at) for s in stats)
        if not hit:
            refused = next((i for i, s in enumerate(states) if s.remaining <= 0), None)
        return Counted(states, refused)

    def _hit(self, windows: Sequence[Window]) -> int | None:
        limiter = self._limiter
        if len(windows) == 1:  # one window: `limits` checks and counts it at once
            return None if limiter.hit(windows[0].item, *windows[0].identifiers) else 0
        for i, w in enumerate(windows):
            if not limiter.test(w.item, *w.identifiers):
                return i
        refused: int | None = None
        for i, w in enumerate(windows):
            if not limiter.hit(w.item, *w.identifiers) and refused is None:
                refused = i  # another process filled it meanwhile (a store shared without Redis)
        return refused


# KEYS[i]: a window's list of timestamps, newest first. ARGV[1]: "1" counts the request, "0"
# only reads; ARGV[2i], ARGV[2i+1]: window i's limit and length in seconds.
# Returns {index of the first full window or 0, then for each window: its requests after this
# one, milliseconds until its oldest request leaves it}.
_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local hit = ARGV[1] == '1'
local counts, oldest, refused = {}, {}, 0

for i = 1, #KEYS do
    local limit, seconds = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    local since = now - seconds
    -- binary search for the last (oldest) entry still inside the window
    local low, high, last = 0, limit - 1, -1
    while low <= high do
        local mid = math.floor((low + high) / 2)
        local stamp = tonumber(redis.call('LINDEX', KEYS[i], mid))
        if stamp and stamp >= since then
            last, oldest[i], low = mid, stamp, mid + 1
        else
            high = mid - 1
        end
    end
    counts[i] = last + 1
    if refused == 0 and counts[i] >= limit then
        refused = i
    end
end

if hit and refused == 0 then
    local stamp = string.format('%.6f', now)
    for i = 1, #KEYS do
        local limit, seconds = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
        redis.call('LPUSH', KEYS[i], stamp)
        redis.call('LTRIM', KEYS[i], 0, limit - 1)
        redis.call('EXPIRE', KEYS[i], seconds)
        counts[i] = counts[i] + 1
        oldest[i] = oldest[i] or now
    end
end

local result = {refused}
for i = 1, #KEYS do
    local seconds = tonumber(ARGV[2 * i + 1])
    result[2 * i] = counts[i]
    result[2 * i + 1] = math.ceil(((oldest[i] or now) + seconds - now) * 1000)
end
return result
"""


class RedisWindows:
    """Windows on Redis: every check is one script call, one round trip."""

    def __init__(self, storage: RedisStorage) -> None:
        self._prefix = storage.key_prefix
        self._errors = storage.base_exceptions
        self._script = storage.get_connection().register_script(_SCRIPT.encode())

    def count(self, windows: Sequence[Window], *, hit: bool) -> Counted:
        keys = [f"{self._prefix}:{w.key}" for w in windows]
        args: list[int] = [int(hit)]
        for w in windows:
            args += [w.item.amount, w.item.get_expiry()]
        try:
            reply = self._script(keys, args)
        except self._errors as exc:
            raise StorageError(exc) from exc
        refused, *flat = (int(v) for v in reply)
        states = tuple(
            WindowState(max(0, w.item.amount - flat[2 * i]), flat[2 * i + 1] / 1000)
            for i, w in enumerate(windows)
        )
        return Counted(states, refused - 1 if refused else None)
