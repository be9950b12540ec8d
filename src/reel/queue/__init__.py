"""Task dispatch: embedded (task table) or a distributed queue."""

from __future__ import annotations

from reel.config import Settings
from reel.queue.base import Dispatcher
from reel.queue.local import LocalDispatcher

__all__ = ["Dispatcher", "LocalDispatcher", "open_dispatcher"]


def open_dispatcher(settings: Settings) -> Dispatcher:  # noqa: ARG001 - scale-out picks by settings
    return LocalDispatcher()
