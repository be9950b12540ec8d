"""When to ask again: the poll schedule of ``wait()`` and the retry schedule of requests.

Both are plain objects with no I/O, so :class:`~reel.client.Client` and
:class:`~reel.client.AsyncClient` share them and differ only in how they sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal, TypeAlias

import httpx

from ._errors import (
    ERROR_CODES,
    APIConnectionError,
    GenerationFailedError,
    ReelAPIError,
    ReelClientError,
    TaskCanceledError,
    WaitTimeoutError,
)
from ._models import TaskStatus

__all__ = ["Poller", "RetryPolicy", "Safety", "task_error"]

Safety: TypeAlias = Literal["never", "keyed", "safe"]
"""How safe a request is to send again.

``safe``: reads and cancel; retried on connection errors, 502/503/504 and 429
(except ``ACTIVE_TASK_LIMIT_EXCEEDED``, which waiting does not fix).
``keyed``: ``generate`` with an ``Idempotency-Key``; retried on connection
errors and 502/503/504, never on 429 or another 4xx.
``never``: ``generate`` without a key; a lost answer may still have created a task.
"""

_TRANSIENT_STATUSES: Final = frozenset({502, 503, 504})
_TRANSIENT_TRANSPORT: Final = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


def task_error(status: TaskStatus) -> ReelAPIError:
    """The exception for a task that ended ``failed``, chosen by its ``errorCode``."""
    if status.canceled:
        cls: type[ReelAPIError] = TaskCanceledError
    elif status.error_code is not None and status.error_code in ERROR_CODES:
        cls = ERROR_CODES[status.error_code]
    else:
        cls = GenerationFailedError
    default = "task was canceled" if status.canceled else "video generation failed"
    return cls(
        status.error or default,
        error_code=status.error_code or ("TASK_CANCELED" if status.canceled else None),
        body=status.raw,
        task=status,
    )


class Poller:
    """Decides, after each status, whether ``wait()`` returns, raises or sleeps."""

    def __init__(
        self,
        task_id: str,
        *,
        poll_interval: float,
        timeout: float | None,
        clock: Callable[[], float],
    ) -> None:
        if poll_interval < 0:
            raise ValueError("poll_interval must be >= 0")
        self.task_id = task_id
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._clock = clock
        self._started = clock()

    def next_delay(self, status: TaskStatus) -> float | None:
        """``None`` once completed; else seconds to sleep before the next poll.

        Raises the task's error when it failed, and :class:`WaitTimeoutError`
        when ``timeout`` seconds have passed.
        """
        if status.status == "completed":
            return None
        if status.status == "failed":
            raise task_error(status)
        if self.timeout is None:
            return self.poll_interval
        remaining = self.timeout - (self._clock() - self._started)
        if remaining <= 0:
            raise WaitTimeoutError(
                f"task {self.task_id} still {status.stage or status.status} "
                f"after {self.timeout:g}s",
                task=status,
            )
        return min(self.poll_interval, remaining)


class RetryPolicy:
    """Whether, and after how long, to send a failed request again."""

    #: a ``Retry-After`` longer than this is not waited out; the error is raised
    max_retry_after: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 8.0

    def __init__(self, max_retries: int) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.max_retries = max_retries

    def delay(
        self,
        attempt: int,
        safety: Safety,
        error: ReelClientError,
        *,
        cause: Exception | None = None,
    ) -> float | None:
        """Seconds to sleep before retry number ``attempt + 1``, or ``None`` to raise."""
        if attempt >= self.max_retries or safety == "never":
            return None
        if isinstance(error, APIConnectionError):
            if not isinstance(cause, _TRANSIENT_TRANSPORT):
                return None
        elif isinstance(error, ReelAPIError):
            if not self._retryable_status(error, safety):
                return None
            if error.retry_after is not None:
                return error.retry_after if error.retry_after <= self.max_retry_after else None
        else:
            return None
        return min(self.base_delay * 2**attempt, self.max_delay)

    @staticmethod
    def _retryable_status(error: ReelAPIError, safety: Safety) -> bool:
        if error.status_code in _TRANSIENT_STATUSES:
            return True
        return (
            safety == "safe"
            and error.status_code == 429
            and error.error_code != "ACTIVE_TASK_LIMIT_EXCEEDED"
        )
