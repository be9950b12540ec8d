"""What ``Client`` and ``AsyncClient`` share: configuration, request bodies, parsing.

Nothing here does I/O; the two clients differ only in how they send and sleep.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Final, TypeAlias, cast

import httpx

from ._errors import APIConnectionError, ReelAPIError, error_class
from ._models import Aspect, Duration, JSONObject, Mode, Submitted, TaskStatus, Tier, as_object
from ._polling import RetryPolicy

__all__ = [
    "DEFAULT_SERVER",
    "PREFIX",
    "BaseClient",
    "BytesCallback",
    "ProgressCallback",
    "check_complete",
    "content_length",
    "json_object",
    "temp_file",
    "unexpected_body",
    "url_of",
]

DEFAULT_SERVER: Final = "http://127.0.0.1:8000"
PREFIX: Final = "/api/sora-2"


def url_of(path: str) -> str:
    """A contract path under :data:`PREFIX`; a ``/v1/…`` path (OpenAI's Videos API) as is."""
    return path if path.startswith("/v1/") else PREFIX + path


ProgressCallback: TypeAlias = Callable[[TaskStatus], None]
BytesCallback: TypeAlias = Callable[[int, int | None], None]


class BaseClient:
    """What the sync and async clients share; no I/O here."""

    def __init__(
        self,
        server: str | None,
        api_key: str | None,
        *,
        max_retries: int,
        clock: Callable[[], float],
    ) -> None:
        #: base URL, from ``REEL_SERVER`` when not given
        self.server = (server or os.environ.get("REEL_SERVER") or DEFAULT_SERVER).rstrip("/")
        #: bearer key, from ``REEL_API_KEY`` when not given
        self.api_key = api_key if api_key is not None else os.environ.get("REEL_API_KEY") or None
        self.max_retries = max_retries
        self._retry = RetryPolicy(max_retries)
        self._clock = clock

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        # The key rides on each API request, never on the client, so downloads
        # from a signed URL (maybe on another host) do not leak it.
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    @staticmethod
    def _generate_body(
        prompt: str,
        *,
        mode: Mode | None,
        tier: Tier,
        aspect: Aspect,
        duration: Duration,
        image_urls: Sequence[str] | None,
        callback_url: str | None = None,
    ) -> dict[str, object]:
        if isinstance(image_urls, str):
            raise TypeError("image_urls must be a sequence of URLs, not a single string")
        body: dict[str, object] = {
            "prompt": prompt,
            "mode": mode or ("imageToVideo" if image_urls else "textToVideo"),
            "modelTier": tier,
            "aspectRatio": aspect,
            "videoDuration": duration,
        }
        if image_urls is not None:
            body["imageUrls"] = list(image_urls)
        if callback_url is not None:
            body["callBackUrl"] = callback_url
        return body

    @staticmethod
    def _submitted(data: JSONObject) -> Submitted:
        submitted = Submitted.from_json(data)
        if data.get("success") is False or not submitted.task_id:
            raise unexpected_body(data, "generate answered without a taskId")
        return submitted

    @staticmethod
    def _video_submitted(data: JSONObject) -> Submitted:
        """A ``/v1/videos`` video object as the task it is."""
        video_id, status = data.get("id"), data.get("status")
        if not isinstance(video_id, str) or not video_id:
            raise unexpected_body(data, "the video answer has no id")
        return Submitted(task_id=video_id, status=str(status or "queued"), raw=data)

    @staticmethod
    def _task_status(data: JSONObject, task_id: str) -> TaskStatus:
        # A failed task is a 200 with success: false; only a body without a
        # status is an error.
        if not isinstance(data.get("status"), str):
            raise unexpected_body(data, "status answer without a status")
        return TaskStatus.from_json(data, task_id=task_id)

    @staticmethod
    def _page(data: JSONObject, after: str | None) -> tuple[list[TaskStatus], str | None]:
        items = data.get("data")
        rows = (
            [TaskStatus.from_json(as_object(i)) for i in cast(list[object], items)]
            if isinstance(items, list)
            else []
        )
        cursor = data.get("nextCursor")
        if data.get("hasMore") is not True or not isinstance(cursor, str) or cursor == after:
            return rows, None  # last page (or a server repeating its cursor)
        return rows, cursor

    @staticmethod
    def _video_url(video: str | TaskStatus) -> str:
        if isinstance(video, TaskStatus):
            if video.video_url is None:
                raise ValueError(f"task {video.task_id} has no videoUrl (status {video.status})")
            return video.video_url
        return video


def unexpected_body(data: JSONObject, fallback: str) -> ReelAPIError:
    """The error for a 2xx answer that is not what the contract promises."""
    message = data.get("error")
    code = data.get("errorCode")
    error_code = code if isinstance(code, str) else None
    return error_class(error_code, None)(
        message if isinstance(message, str) else fallback,
        status_code=200,
        error_code=error_code,
        body=data,
    )


def json_object(response: httpx.Response) -> JSONObject:
    """A success response's body, which must be a JSON object."""
    data: object
    try:
        data = response.json()
    except ValueError:
        data = None
    body = as_object(data)
    if not isinstance(data, dict):
        raise ReelAPIError(
            "server answered with something other than a JSON object",
            status_code=response.status_code,
            request_id=response.headers.get("x-request-id"),
        )
    return body


def content_length(response: httpx.Response) -> int | None:
    """Expected body size in bytes, when the server says and it is not compressed."""
    if "content-encoding" in response.headers:
        return None  # the header counts encoded bytes; we count decoded ones
    value = response.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def temp_file(target: Path) -> tuple[IO[bytes], Path]:
    """A new hidden file beside ``target`` (same filesystem, so renaming is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.chmod(name, 0o644)  # mkstemp makes it 0600; a downloaded video is not a secret
    return os.fdopen(fd, "wb"), Path(name)


def check_complete(written: int, total: int | None) -> None:
    """Raise when the server closed the body before ``Content-Length`` bytes came."""
    if total is not None and written != total:
        raise APIConnectionError(f"download ended after {written} of {total} bytes")
