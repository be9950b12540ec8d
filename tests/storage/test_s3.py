"""S3-compatible storage against a real S3 server (moto's, on loopback)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from reel.config import Settings
from reel.storage import StorageError, open_storage
from reel.storage.s3 import MAX_URL_SECONDS, S3Storage
from tests import services as real

pytestmark = pytest.mark.services


@pytest.fixture
def storage(s3: real.S3Server, tmp_path: Path) -> S3Storage:
    creds = s3.credentials()
    settings = Settings(
        data_dir=tmp_path,
        storage="s3",
        s3_bucket=s3.new_bucket(),
        s3_prefix="reel/",
        s3_endpoint_url=creds["endpoint_url"],
        s3_region="us-east-1",
        s3_access_key_id=creds["aws_access_key_id"],
        s3_secret_access_key=creds["aws_secret_access_key"],
        s3_addressing_style="path",
    )
    store = open_storage(settings)
    assert isinstance(store, S3Storage)
    return store


def test_put_get_exists_delete_roundtrip(storage: S3Storage, tmp_path: Path) -> None:
    src = tmp_path / "v.mp4"
    src.write_bytes(b"\x00\x01video" * 100_000)  # > one part of a small upload
    storage.put_file("videos/a.mp4", src)
    storage.put_bytes("inputs/a.png", b"png-bytes")
    assert storage.exists("videos/a.mp4") and storage.exists("inputs/a.png")
    assert not storage.exists("videos/missing.mp4")
    dest = tmp_path / "back.mp4"
    storage.get_to("videos/a.mp4", dest)
    assert dest.read_bytes() == src.read_bytes()
    head = storage._client.head_object(Bucket=storage.bucket, Key="reel/videos/a.mp4")
    assert head["ContentType"] == "video/mp4"  # under the configured prefix, typed
    storage.delete("videos/a.mp4")
    storage.delete("videos/a.mp4")  # deleting twice is fine
    assert not storage.exists("videos/a.mp4")


def test_presigned_url_serves_ranges_and_honours_expiry(storage: S3Storage, tmp_path: Path) -> None:
    storage.put_bytes("videos/b.mp4", bytes(range(256)) * 4)
    url = storage.url("videos/b.mp4", base_url="http://ignored", expires_in=600)
    assert url.startswith(storage._client.meta.endpoint_url)
    assert "X-Amz-Expires=600" in url and "X-Amz-Signature=" in url
    whole = httpx.get(url, timeout=10)
    assert whole.status_code == 200 and whole.content == bytes(range(256)) * 4
    part = httpx.get(url, headers={"Range": "bytes=0-9"}, timeout=10)
    assert part.status_code == 206 and part.content == bytes(range(10))
    capped = storage.url("videos/b.mp4", base_url="", expires_in=30 * 24 * 3600)
    assert f"X-Amz-Expires={MAX_URL_SECONDS}" in capped
    # The lifetime is signed into the URL (the test server does not enforce it; S3 does).
    assert "X-Amz-Expires=60&" in storage.url("videos/b.mp4", base_url="", expires_in=60)


def test_bad_keys_and_missing_objects_raise_storage_error(
    storage: S3Storage, tmp_path: Path
) -> None:
    for key in ("", "/abs", "a/../b"):
        with pytest.raises(StorageError):
            storage.put_bytes(key, b"x")
    with pytest.raises(StorageError):
        storage.get_to("nope.mp4", tmp_path / "x")


def test_unreachable_endpoint_is_a_storage_error(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        storage="s3",
        s3_bucket="b",
        s3_endpoint_url=f"http://127.0.0.1:{real.free_port()}",
        s3_region="us-east-1",
        s3_access_key_id="x",
        s3_secret_access_key="y",
    )
    with pytest.raises(StorageError):
        open_storage(settings).put_bytes("a.png", b"x")
