"""Storage backends behind one Protocol."""

from __future__ import annotations

from reel.config import Settings
from reel.storage.base import Storage, StorageError
from reel.storage.local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StorageError", "open_storage"]


def open_storage(settings: Settings) -> Storage:
    return LocalStorage(settings.media_dir, secret=settings.signing_key)
