"""Storage backends behind one Protocol."""

from __future__ import annotations

from reel.config import Settings
from reel.storage.base import Storage, StorageError
from reel.storage.local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StorageError", "open_storage"]


def open_storage(settings: Settings) -> Storage:
    if settings.storage == "s3":
        from reel.storage.s3 import open_s3  # boto3 is imported only when configured

        return open_s3(settings)
    return LocalStorage(settings.media_dir, secret=settings.signing_key)
