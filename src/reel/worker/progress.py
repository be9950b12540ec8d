"""The engine's ProgressSink: writes stage/percent to the task row and keeps the lease alive.

A background thread renews the lease every ``heartbeat_seconds`` even while an engine is busy
inside one long step. Progress calls are throttled. The sink raises :class:`Interrupted` at the
engine's next step boundary when the task was canceled, the lease was lost, or the worker drains.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, TypeAlias

from reel.engines.base import Interrupted
from reel.service import lifecycle
from reel.service.clock import now
from reel.service.context import Services
from reel.types import Stage

_MIN_WRITE_INTERVAL = 0.5

#: Polled between steps when a queue can ask a running task to stop: ``"canceled"`` (its
#: owner canceled it), ``"draining"`` (the worker is shutting down) or ``None``.
AbortReason: TypeAlias = Callable[[], Literal["canceled", "draining"] | None]


class ProgressReporter:
    def __init__(
        self,
        services: Services,
        lease: lifecycle.Lease,
        *,
        draining: threading.Event,
        lease_seconds: float,
        heartbeat_seconds: float,
        abort_reason: AbortReason | None = None,
    ) -> None:
        self._services = services
        self._lease = lease
        self._draining = draining
        self._lease_seconds = lease_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._abort_reason = abort_reason
        self._lock = threading.Lock()
        self._stage = Stage.LOADING
        self._percent = 0.0
        self._last_write = 0.0
        self._stop_reason: str | None = None
        self._done = threading.Event()

    def __call__(self, stage: Stage, percent: float) -> None:
        with self._lock:
            changed = stage != self._stage
            self._stage, self._percent = stage, percent
        if changed or time.monotonic() - self._last_write >= _MIN_WRITE_INTERVAL:
            self._beat()
        self.check()

    def check(self) -> None:
        """Raise :class:`Interrupted` if the task must stop now."""
        if self._stop_reason is not None:
            raise Interrupted(self._stop_reason)
        if self._draining.is_set():
            raise Interrupted("draining")
        if self._abort_reason is not None:
            reason = self._abort_reason()
            if reason is not None:
                raise Interrupted(reason)

    def _beat(self) -> None:
        with self._lock:
            stage, percent = self._stage, self._percent
        self._last_write = time.monotonic()
        with self._services.db.write() as session:
            beat = lifecycle.heartbeat(
                session,
                self._lease,
                lease_until=now() + self._lease_seconds,
                stage=stage,
                percent=percent,
            )
        if not beat.held:
            self._stop_reason = "lease_lost"
        elif beat.cancel_requested:
            self._stop_reason = "canceled"

    @contextmanager
    def running(self) -> Iterator[None]:
        thread = threading.Thread(target=self._loop, name="reel-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._done.set()
            thread.join(timeout=5)

    def _loop(self) -> None:
        # Poll the cancel flag more often than the lease needs renewing.
        interval = min(self._heartbeat_seconds, 1.0)
        while not self._done.wait(interval):
            try:
                self._beat()
            except Exception:
                continue
