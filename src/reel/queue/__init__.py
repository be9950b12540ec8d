"""Task dispatch: embedded (task table) or a distributed queue."""

from __future__ import annotations

from reel.config import Settings
from reel.queue.base import Dispatcher
from reel.queue.claim import claim_next, claim_task
from reel.queue.doorbell import Doorbell
from reel.queue.local import LocalDispatcher

__all__ = ["Dispatcher", "LocalDispatcher", "claim_next", "claim_task", "open_dispatcher"]


def open_dispatcher(settings: Settings) -> Dispatcher:
    if settings.resolved_queue == "procrastinate":
        from reel.queue.procrastinate import ProcrastinateDispatcher, make_app, stalled_seconds

        return ProcrastinateDispatcher(
            make_app(settings), stalled_seconds=stalled_seconds(settings)
        )
    return LocalDispatcher(Doorbell(settings.data_dir / "wake"))
