"""``AsyncClient``: :class:`._client.Client` for asyncio, on the same base and schedules."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
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

__all__ = ["AsyncClient"]


class AsyncClient(BaseClient):
    """:class:`Client` for asyncio: the same methods, awaited (``tasks()`` is async-iterated)."""

    def __init__(
        self,
        server: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(server, api_key, max_retries=max_retries, clock=clock)
        self._sleep = sleep
        self._http = httpx.AsyncClient(base_url=self.server, timeout=timeout, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _request(
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
                response = await self._http.request(
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
            await self._sleep(delay)

    async def generate(
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
        """See :meth:`Client.generate`."""
        body = self._generate_body(
            prompt,
            mode=mode,
            tier=tier,
            aspect=aspect,
            duration=duration,
            image_urls=image_urls,
            callback_url=callback_url,
        )
        data = await self._request(
            "POST",
            "/generate",
            json=body,
            safety="keyed" if idempotency_key is not None else "never",
            idempotency_key=idempotency_key,
        )
        return self._submitted(data)

    async def extend(
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
        data = await self._request(
            "POST",
            "/v1/videos/extensions",
            json={"prompt": prompt, "seconds": str(seconds), "video": {"id": video_id}},
            safety="keyed" if idempotency_key is not None else "never",
            idempotency_key=idempotency_key,
        )
        return self._video_submitted(data)

    async def check_status(self, task_id: str) -> TaskStatus:
        """See :meth:`Client.check_status`."""
        data = await self._request("POST", "/check-status", json={"taskId": task_id}, safety="safe")
        return self._task_status(data, task_id)

    async def wait(
        self,
        task_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 2.0,
        timeout: float | None = None,
    ) -> TaskStatus:
        """See :meth:`Client.wait`."""
        poller = Poller(task_id, poll_interval=poll_interval, timeout=timeout, clock=self._clock)
        while True:
            status = await self.check_status(task_id)
            if on_progress is not None:
                on_progress(status)
            delay = poller.next_delay(status)
            if delay is None:
                return status
            await self._sleep(delay)

    async def generate_and_wait(
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
        """See :meth:`Client.generate_and_wait`."""
        submitted = await self.generate(
            prompt,
            mode=mode,
            tier=tier,
            aspect=aspect,
            duration=duration,
            image_urls=image_urls,
            idempotency_key=idempotency_key,
        )
        return await self.wait(
            submitted.task_id, on_progress=on_progress, poll_interval=poll_interval, timeout=timeout
        )

    async def cancel(self, task_id: str) -> TaskStatus:
        """See :meth:`Client.cancel`."""
        data = await self._request("POST", "/cancel", json={"taskId": task_id}, safety="safe")
        return TaskStatus.from_json(data, task_id=task_id)

    async def account(self) -> Account:
        """See :meth:`Client.account`."""
        return Account.from_json(await self._request("GET", "/account", safety="safe"))

    async def tasks(self, *, limit: int = 20) -> AsyncIterator[TaskStatus]:
        """See :meth:`Client.tasks`."""
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if after is not None:
                params["after"] = after
            data = await self._request("GET", "/tasks", params=params, safety="safe")
            rows, after = self._page(data, after)
            for row in rows:
                yield row
            if after is None:
                return

    async def download(
        self,
        video: str | TaskStatus,
        path: str | os.PathLike[str],
        *,
        on_bytes: BytesCallback | None = None,
    ) -> Path:
        """See :meth:`Client.download`."""
        url = self._video_url(video)
        target = Path(path)
        file, temp = temp_file(target)
        try:
            with file:
                async with self._http.stream("GET", url, follow_redirects=True) as response:
                    if not response.is_success:
                        await response.aread()
                        raise error_from_response(response)
                    total, written = content_length(response), 0
                    if on_bytes is not None:
                        on_bytes(0, total)
                    async for chunk in response.aiter_bytes():
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
