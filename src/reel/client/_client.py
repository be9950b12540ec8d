"""``Client``: the Sora 2 contract over httpx, blocking.

It builds on :class:`._base.BaseClient` and the schedules in :mod:`._polling`; each method
here is only the I/O. :mod:`._async_client` is its asyncio twin.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from ._base import (
    BaseClient,
    BytesCallback,
    ProgressCallback,
    check_complete,
    content_length,
    json_object,
    temp_file,
    url_of,
)
from ._errors import connection_error, error_from_response
from ._models import (
    Account,
    Aspect,
    Duration,
    JSONObject,
    Mode,
    Submitted,
    TaskStatus,
    Tier,
)
from ._polling import Poller, Safety

__all__ = ["Client"]


class Client(BaseClient):
    """Synchronous client for a reel server (or any Sora 2 contract server).

    ``server`` and ``api_key`` default to ``$REEL_SERVER`` (else
    ``http://127.0.0.1:8000``) and ``$REEL_API_KEY``. Pass ``transport`` (e.g.
    ``httpx.MockTransport``), ``sleep`` and ``clock`` to test without a server.

    ::

        with Client() as reel:
            task = reel.generate("a red fox in the snow")
            done = reel.wait(task.task_id)
            reel.download(done, "fox.mp4")
    """

    def __init__(
        self,
        server: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(server, api_key, max_retries=max_retries, clock=clock)
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.server, timeout=timeout, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        safety: Safety,
        json: JSONObject | None = None,
        params: dict[str, str | int] | None = None,
        idempotency_key: str | None = None,
    ) -> JSONObject:
        headers = self._headers(idempotency_key)
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method, url_of(path), json=json, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                error = connection_error(exc)
                delay = self._retry.delay(attempt, safety, error, cause=exc)
                if delay is None:
                    raise error from exc
            else:
                if response.is_success:
                    return json_object(response)
                api_error = error_from_response(response)
                delay = self._retry.delay(attempt, safety, api_error)
                if delay is None:
                    raise api_error
            attempt += 1
            self._sleep(delay)

    def generate(
        self,
        prompt: str,
        *,
        mode: Mode | None = None,
        tier: Tier = "sora2",
        aspect: Aspect = "portrait",
        duration: Duration = "10",
        image_urls: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> Submitted:
        """Submit a generation. ``mode`` defaults to imageToVideo when ``image_urls`` is given;
        ``callback_url`` receives signed webhook events for this task (docs/webhooks.md).

        Never retried on an HTTP error; retried on a connection error (or
        502/503/504) only when ``idempotency_key`` is set.
        """
        body = self._generate_body(
            prompt,
            mode=mode,
            tier=tier,
            aspect=aspect,
            duration=duration,
            image_urls=image_urls,
            callback_url=callback_url,
        )
        data = self._request(
            "POST",
            "/generate",
            json=body,
            safety="keyed" if idempotency_key is not None else "never",
            idempotency_key=idempotency_key,
        )
        return self._submitted(data)

    def extend(
        self,
        video_id: str,
        prompt: str,
        *,
        seconds: int = 4,
        idempotency_key: str | None = None,
    ) -> Submitted:
        """Extend a completed video made through ``/v1/videos`` (OpenAI's Videos API) by a
        ``seconds`` long segment (4, 8, 12, 16 or 20) that continues from its end: a new video,
        the source followed by the segment. Its id works with :meth:`wait` and
        :meth:`download` like any task's. Retried like :meth:`generate`."""
        data = self._request(
            "POST",
            "/v1/videos/extensions",
            json={"prompt": prompt, "seconds": str(seconds), "video": {"id": video_id}},
            safety="keyed" if idempotency_key is not None else "never",
            idempotency_key=idempotency_key,
        )
        return self._video_submitted(data)

    def check_status(self, task_id: str) -> TaskStatus:
        """The task's status. A failed task is returned (``status == "failed"``), not raised."""
        data = self._request("POST", "/check-status", json={"taskId": task_id}, safety="safe")
        return self._task_status(data, task_id)

    def wait(
        self,
        task_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 2.0,
        timeout: float | None = None,
    ) -> TaskStatus:
        """Poll until the task completes and return its final status.

        ``on_progress`` sees every status, the last one included. Raises the
        failure's error class (e.g. :class:`GenerationFailedError`,
        :class:`TaskCanceledError`) when the task fails, and
        :class:`WaitTimeoutError` after ``timeout`` seconds.
        """
        poller = Poller(task_id, poll_interval=poll_interval, timeout=timeout, clock=self._clock)
        while True:
            status = self.check_status(task_id)
            if on_progress is not None:
                on_progress(status)
            delay = poller.next_delay(status)
            if delay is None:
                return status
            self._sleep(delay)

    def generate_and_wait(
        self,
        prompt: str,
        *,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 2.0,
        timeout: float | None = None,
        mode: Mode | None = None,
        tier: Tier = "sora2",
        aspect: Aspect = "portrait",
        duration: Duration = "10",
        image_urls: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> TaskStatus:
        """:meth:`generate`, then :meth:`wait` for it."""
        submitted = self.generate(
            prompt,
            mode=mode,
            tier=tier,
            aspect=aspect,
            duration=duration,
            image_urls=image_urls,
            idempotency_key=idempotency_key,
        )
        return self.wait(
            submitted.task_id, on_progress=on_progress, poll_interval=poll_interval, timeout=timeout
        )

    def cancel(self, task_id: str) -> TaskStatus:
        """Ask the server to cancel the task; returns its status afterwards."""
        data = self._request("POST", "/cancel", json={"taskId": task_id}, safety="safe")
        return TaskStatus.from_json(data, task_id=task_id)

    def account(self) -> Account:
        """The calling key's account: credits and rate limits."""
        return Account.from_json(self._request("GET", "/account", safety="safe"))

    def tasks(self, *, limit: int = 20) -> Iterator[TaskStatus]:
        """Every task of this key, newest first, fetched ``limit`` per page."""
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if after is not None:
                params["after"] = after
            data = self._request("GET", "/tasks", params=params, safety="safe")
            rows, after = self._page(data, after)
            yield from rows
            if after is None:
                return

    def download(
        self,
        video: str | TaskStatus,
        path: str | os.PathLike[str],
        *,
        on_bytes: BytesCallback | None = None,
    ) -> Path:
        """Stream a video (its URL, or a completed status) to ``path``.

        Bytes go to a temporary file beside ``path`` that is renamed into place
        only once complete, so ``path`` never holds a partial video.
        ``on_bytes(done, total)`` sees progress; ``total`` is ``None`` when unknown.
        """
        url = self._video_url(video)
        target = Path(path)
        file, temp = temp_file(target)
        try:
            with file, self._http.stream("GET", url, follow_redirects=True) as response:
                if not response.is_success:
                    response.read()
                    raise error_from_response(response)
                total, written = content_length(response), 0
                if on_bytes is not None:
                    on_bytes(0, total)
                for chunk in response.iter_bytes():
                    file.write(chunk)
                    written += len(chunk)
                    if on_bytes is not None:
                        on_bytes(written, total)
                check_complete(written, total)
            temp.replace(target)
        except httpx.TransportError as exc:
            raise connection_error(exc) from exc
        finally:
            temp.unlink(missing_ok=True)  # gone already once renamed into place
        return target
