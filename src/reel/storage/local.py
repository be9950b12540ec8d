"""Media in a local directory. Writes go to a temp file, then ``os.replace`` into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from reel.storage.base import StorageError
from reel.storage.signing import signed_path


class LocalStorage:
    def __init__(self, root: Path, *, secret: bytes) -> None:
        self.root = root.resolve()
        self._secret = secret

    def path(self, key: str) -> Path:
        """The file for ``key``; refuses keys that would leave the root."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise StorageError(f"invalid storage key {key!r}")
        return path

    def _atomic_write(self, key: str, write: Callable[[BinaryIO], object]) -> None:
        dest = self.path(key)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
            try:
                with os.fdopen(fd, "wb") as out:
                    write(out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"could not store {key}: {exc.strerror or exc}") from exc

    def put_file(self, key: str, src: Path) -> None:
        def write(out: BinaryIO) -> None:
            with src.open("rb") as fh:
                shutil.copyfileobj(fh, out)

        self._atomic_write(key, write)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._atomic_write(key, lambda out: out.write(data))

    def get_to(self, key: str, dest: Path) -> None:
        try:
            shutil.copyfile(self.path(key), dest)
        except OSError as exc:
            raise StorageError(f"could not read {key}: {exc.strerror or exc}") from exc

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"could not delete {key}: {exc.strerror or exc}") from exc

    def url(self, key: str, *, base_url: str, expires_in: int) -> str:
        return base_url.rstrip("/") + signed_path(self._secret, key, expires_in=expires_in)
