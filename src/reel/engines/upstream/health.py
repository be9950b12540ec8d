"""Health of each upstream server, as this worker process sees it.

A circuit breaker per server: ``failure_threshold`` failures in a row open it for
``cooldown`` seconds; after that calls are let through again (half-open, and a worker process
runs one task at a time, so that is one trial), a success closes it and one more failure opens
it for another cooldown. A ``429`` with ``Retry-After`` defers the server until then without
counting as a failure. State lives in the worker process: each process learns on its own.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0
    not_before: float = 0.0


class Health:
    def __init__(
        self,
        *,
        failure_threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._servers: dict[str, _State] = {}

    def _state(self, server: str) -> _State:
        return self._servers.setdefault(server, _State())

    def available(self, server: str) -> bool:
        """Whether a call may go to ``server`` now."""
        return self.next_chance(server) <= self._clock()

    def is_open(self, server: str) -> bool:
        with self._lock:
            state = self._state(server)
            return state.failures >= self._threshold and self._clock() < state.open_until

    def next_chance(self, server: str) -> float:
        """Clock time at which ``server`` can be tried again (now if it can)."""
        with self._lock:
            state = self._state(server)
            opened = state.open_until if state.failures >= self._threshold else 0.0
            return max(state.not_before, opened, self._clock())

    def success(self, server: str) -> None:
        with self._lock:
            self._servers[server] = _State()

    def failure(self, server: str) -> None:
        with self._lock:
            state = self._state(server)
            state.failures += 1
            if state.failures >= self._threshold:
                state.open_until = self._clock() + self._cooldown

    def defer(self, server: str, seconds: float) -> None:
        """The server asked us to come back later (429 + Retry-After)."""
        with self._lock:
            state = self._state(server)
            state.not_before = max(state.not_before, self._clock() + max(0.0, seconds))


def retry_after(
    value: str | None, *, default: float, now: Callable[[], float] = time.time
) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - now())
