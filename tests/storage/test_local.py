"""Local storage: atomic writes, keys confined to the root, signed URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from reel.storage.base import StorageError
from reel.storage.local import LocalStorage
from reel.storage.signing import sign, signed_path, verify


def test_put_get_delete(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "media", secret=b"s")
    store.put_bytes("a/b.bin", b"hello")
    assert store.exists("a/b.bin")
    store.get_to("a/b.bin", tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b"hello"
    store.delete("a/b.bin")
    store.delete("a/b.bin")  # missing is fine
    assert not store.exists("a/b.bin")


@pytest.mark.parametrize("key", ["../escape", "a/../../escape", "/etc/passwd", "", "."])
def test_keys_cannot_leave_the_root(tmp_path: Path, key: str) -> None:
    store = LocalStorage(tmp_path / "media", secret=b"s")
    with pytest.raises(StorageError):
        store.put_bytes(key, b"x")


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "media", secret=b"s")
    missing = tmp_path / "does-not-exist.mp4"
    with pytest.raises(StorageError):
        store.put_file("v.mp4", missing)
    assert list((tmp_path / "media").iterdir()) == []


def test_signatures() -> None:
    good = sign(b"k", "videos/x.mp4", 100)
    assert verify(b"k", "videos/x.mp4", 100, good)
    assert not verify(b"k", "videos/y.mp4", 100, good)
    assert not verify(b"k", "videos/x.mp4", 101, good)
    assert not verify(b"other", "videos/x.mp4", 100, good)
    assert not verify(b"k", "videos/x.mp4", 100, "é" * 64)  # non-ASCII never raises
    assert signed_path(b"k", "videos/x.mp4", expires_in=10, now=0).startswith(
        "/media/videos/x.mp4?exp=10&sig="
    )
