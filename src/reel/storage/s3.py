"""Media in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, …) through boto3.

Uploads stream from the worker's file in parts (boto3's transfer manager), so a video is never
held in memory; an object appears whole or not at all. ``videoUrl`` is a presigned GET URL
with the same lifetime as a local signed link, so any process, anywhere, can hand it out.
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from reel.config import Settings
from reel.storage.base import StorageError

if TYPE_CHECKING:
    from botocore.client import BaseClient

#: SigV4 presigned URLs live at most a week.
MAX_URL_SECONDS: Final = 7 * 24 * 3600
_TYPES: Final = {".mp4": "video/mp4", ".webp": "image/webp", ".jpg": "image/jpeg"}


class S3Storage:
    def __init__(self, client: BaseClient, *, bucket: str, prefix: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"invalid storage key {key!r}")
        return self.prefix + key

    def put_file(self, key: str, src: Path) -> None:
        with _translated(f"could not store {key}"):
            self._client.upload_file(
                str(src), self.bucket, self._key(key), ExtraArgs={"ContentType": _type(key)}
            )

    def put_bytes(self, key: str, data: bytes) -> None:
        with _translated(f"could not store {key}"):
            self._client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=_type(key)
            )

    def get_to(self, key: str, dest: Path) -> None:
        with _translated(f"could not read {key}"):
            self._client.download_file(self.bucket, self._key(key), str(dest))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        with _translated(f"could not look up {key}"):
            try:
                self._client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
        return True

    def delete(self, key: str) -> None:
        with _translated(f"could not delete {key}"):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def url(self, key: str, *, base_url: str, expires_in: int) -> str:  # noqa: ARG002
        """A presigned GET URL; ``base_url`` is not needed (the bucket serves it)."""
        with _translated(f"could not sign {key}"):
            url: str = self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=min(expires_in, MAX_URL_SECONDS),
            )
        return url


def _type(key: str) -> str:
    suffix = Path(key).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """boto and transfer errors become :class:`StorageError` at this seam."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError, Boto3Error, OSError) as exc:
        raise StorageError(f"{what}: {exc}") from exc


def open_s3(settings: Settings) -> S3Storage:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise StorageError(
            "REEL_STORAGE=s3 needs the scale extra: pip install 'reel-server[scale]'"
        ) from exc
    if not settings.s3_bucket:
        raise StorageError("REEL_STORAGE=s3 needs REEL_S3_BUCKET")
    options: dict[str, Any] = {
        "endpoint_url": settings.s3_endpoint_url,
        "region_name": settings.s3_region,
        "config": Config(
            s3={"addressing_style": settings.s3_addressing_style},
            retries={"max_attempts": 5, "mode": "standard"},
            signature_version="s3v4",
        ),
    }
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        options["aws_access_key_id"] = settings.s3_access_key_id
        options["aws_secret_access_key"] = settings.s3_secret_access_key.get_secret_value()
    with _SESSION_LOCK:  # one boto3 session per process: its service models load once
        global _session
        if _session is None:
            _session = boto3.session.Session()
        client = _session.client("s3", **options)
    return S3Storage(client, bucket=settings.s3_bucket, prefix=settings.s3_prefix)


_SESSION_LOCK: Final = threading.Lock()
_session: Any = None
