"""The Storage seam: where videos, previews and input images live."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    """Writing or reading stored media failed."""


class Storage(Protocol):
    def put_file(self, key: str, src: Path) -> None:
        """Store ``src`` under ``key`` atomically: readers see the whole file or nothing."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_to(self, key: str, dest: Path) -> None:
        """Copy the object into a local file (a worker's input)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; missing objects are fine."""
        ...

    def url(self, key: str, *, base_url: str, expires_in: int) -> str:
        """An absolute URL that serves the object until it expires."""
        ...
