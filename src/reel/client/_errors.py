"""Exceptions raised by the client, and the one table that picks them.

Every error the server sends has an ``errorCode``; :data:`ERROR_CODES` maps each
code to its class. A code this client does not know falls back to a class chosen
by HTTP status (:data:`STATUS_CLASSES`), and failing that to :class:`ReelAPIError`.

::

    ReelClientError
    ├── APIConnectionError ── APITimeoutError
    ├── WaitTimeoutError                       (also a TimeoutError)
    └── ReelAPIError
        ├── BadRequestError (400) ── PromptRequiredError, ImageRequiredError, …
        ├── AuthenticationError (401) ── LoginRequiredError
        ├── PaymentRequiredError (402) ── InsufficientCreditsError
        ├── PermissionDeniedError (403), NotFoundError (404) ── TaskNotFoundError
        ├── ConflictError (409)
        ├── RateLimitError (429) ── ActiveTaskLimitError
        ├── InternalServerError (5xx), ServiceBusyError (503)
        └── GenerationFailedError, TaskCanceledError   (a task that ended failed)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Final

import httpx

from ._models import JSONObject, as_object

if TYPE_CHECKING:
    from ._models import TaskStatus

__all__ = [
    "ERROR_CODES",
    "STATUS_CLASSES",
    "APIConnectionError",
    "APITimeoutError",
    "ActiveTaskLimitError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "GenerationFailedError",
    "ImageFetchFailedError",
    "ImageRequiredError",
    "ImageUrlsRequiredError",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidParameterError",
    "LoginRequiredError",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PromptRequiredError",
    "RateLimitError",
    "ReelAPIError",
    "ReelClientError",
    "ServiceBusyError",
    "TaskCanceledError",
    "TaskIdRequiredError",
    "TaskNotFoundError",
    "WaitTimeoutError",
    "connection_error",
    "error_class",
    "error_from_response",
    "parse_retry_after",
]


class ReelClientError(Exception):
    """Base class of everything this client raises."""


class APIConnectionError(ReelClientError):
    """The server could not be reached, or the connection broke mid-request."""


class APITimeoutError(APIConnectionError):
    """The server did not answer within the client's timeout."""


class WaitTimeoutError(ReelClientError, TimeoutError):
    """:meth:`Client.wait` gave up before the task finished; the task keeps running."""

    def __init__(self, message: str, *, task: TaskStatus) -> None:
        super().__init__(message)
        self.message = message
        #: the last status seen before giving up
        self.task = task


class ReelAPIError(ReelClientError):
    """The server answered with an error, or a task ended ``failed``.

    ``status_code`` is ``None`` when the error comes from a failed task rather
    than from an HTTP response; ``task`` then holds that task's status.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        body: Mapping[str, object] | None = None,
        retry_after: float | None = None,
        task: TaskStatus | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.request_id = request_id
        self.body: Mapping[str, object] = body if body is not None else {}
        #: seconds from the ``Retry-After`` header, when the server sent one
        self.retry_after = retry_after
        self.task = task

    def __str__(self) -> str:
        parts = [p for p in (self.error_code, self.message) if p]
        text = ": ".join(parts) if parts else f"HTTP {self.status_code}"
        return f"{text} (request {self.request_id})" if self.request_id else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r}, "
            f"error_code={self.error_code!r}, request_id={self.request_id!r})"
        )


# --- classes by HTTP status -------------------------------------------------------------


class BadRequestError(ReelAPIError):
    """HTTP 400: the request was malformed or missing a field."""


class AuthenticationError(ReelAPIError):
    """HTTP 401: no API key, or a key the server does not accept."""


class PaymentRequiredError(ReelAPIError):
    """HTTP 402."""


class PermissionDeniedError(ReelAPIError):
    """HTTP 403."""


class NotFoundError(ReelAPIError):
    """HTTP 404."""


class ConflictError(ReelAPIError):
    """HTTP 409: e.g. canceling a task that already finished."""


class RateLimitError(ReelAPIError):
    """HTTP 429 / ``API_KEY_RATE_LIMIT_EXCEEDED``: too many requests; see ``retry_after``."""


class InternalServerError(ReelAPIError):
    """HTTP 5xx / ``INTERNAL_ERROR``: quote ``request_id`` when reporting it."""


class ServiceBusyError(ReelAPIError):
    """HTTP 503 / ``SERVICE_BUSY``: the server is overloaded; try again later."""


# --- classes by errorCode ---------------------------------------------------------------


class LoginRequiredError(AuthenticationError):
    """``LOGIN_REQUIRED``: authentication required."""


class ActiveTaskLimitError(RateLimitError):
    """``ACTIVE_TASK_LIMIT_EXCEEDED``: too many unfinished tasks for this key."""


class InsufficientCreditsError(PaymentRequiredError):
    """``INSUFFICIENT_CREDITS``: not enough credits for this generation."""

    @property
    def required_credits(self) -> int | None:
        """Credits the generation needs (the body's ``requiredCredits``)."""
        value = self.body.get("requiredCredits")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class PromptRequiredError(BadRequestError):
    """``PROMPT_REQUIRED``: missing prompt."""


class ImageRequiredError(BadRequestError):
    """``IMAGE_REQUIRED``: imageToVideo mode needs an image."""


class ImageUrlsRequiredError(BadRequestError):
    """``IMAGE_URLS_REQUIRED``: API calls take ``imageUrls`` (no base64)."""


class ImageFetchFailedError(BadRequestError):
    """``IMAGE_FETCH_FAILED``: the server could not download an image URL."""


class InvalidParameterError(BadRequestError):
    """``INVALID_PARAMETER``: a field has a value the server does not accept."""

    @property
    def param(self) -> str | None:
        """Name of the offending field (the body's ``param``)."""
        value = self.body.get("param")
        return value if isinstance(value, str) else None


class TaskIdRequiredError(BadRequestError):
    """``TASK_ID_REQUIRED``: missing task ID."""


class TaskNotFoundError(NotFoundError):
    """``TASK_NOT_FOUND``: no such task, or not owned by this key."""


class GenerationFailedError(ReelAPIError):
    """``GENERATION_FAILED``: the video could not be generated; credits are refunded."""


class TaskCanceledError(ReelAPIError):
    """``TASK_CANCELED``: the task was canceled before it finished."""


ERROR_CODES: Final[Mapping[str, type[ReelAPIError]]] = {
    "LOGIN_REQUIRED": LoginRequiredError,
    "API_KEY_RATE_LIMIT_EXCEEDED": RateLimitError,
    "ACTIVE_TASK_LIMIT_EXCEEDED": ActiveTaskLimitError,
    "INSUFFICIENT_CREDITS": InsufficientCreditsError,
    "PROMPT_REQUIRED": PromptRequiredError,
    "IMAGE_REQUIRED": ImageRequiredError,
    "IMAGE_URLS_REQUIRED": ImageUrlsRequiredError,
    "IMAGE_FETCH_FAILED": ImageFetchFailedError,
    "INVALID_PARAMETER": InvalidParameterError,
    "GENERATION_FAILED": GenerationFailedError,
    "TASK_ID_REQUIRED": TaskIdRequiredError,
    "TASK_NOT_FOUND": TaskNotFoundError,
    "TASK_CANCELED": TaskCanceledError,
    "SERVICE_BUSY": ServiceBusyError,
    "INTERNAL_ERROR": InternalServerError,
}
"""errorCode → exception class: the one place that knows the contract's codes."""

STATUS_CLASSES: Final[Mapping[int, type[ReelAPIError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
    503: ServiceBusyError,
}
"""HTTP status → exception class, for codes missing from :data:`ERROR_CODES`."""


def error_class(error_code: str | None, status_code: int | None) -> type[ReelAPIError]:
    """The class for an error: by code, else by HTTP status, else :class:`ReelAPIError`."""
    if error_code is not None and error_code in ERROR_CODES:
        return ERROR_CODES[error_code]
    if status_code is None:
        return ReelAPIError
    if status_code in STATUS_CLASSES:
        return STATUS_CLASSES[status_code]
    return InternalServerError if status_code >= 500 else ReelAPIError


def error_from_response(response: httpx.Response) -> ReelAPIError:
    """The exception for an error response (its body must already be read).

    Reads the contract's ``{"error": str, "errorCode": str}``, and copes with an
    OpenAI-style ``{"error": {"code", "message"}}``, a FastAPI ``{"detail": …}``
    or a non-JSON body from a proxy in front of the server.
    """
    body: JSONObject
    try:
        body = as_object(response.json())
    except ValueError:
        body = {}
    error = body.get("error")
    nested = as_object(error)
    code = body.get("errorCode", nested.get("code"))
    message = next(
        (
            m
            for m in (error, nested.get("message"), body.get("detail"), body.get("message"))
            if isinstance(m, str) and m
        ),
        None,
    )
    if message is None:
        text = response.text.strip()
        message = text[:200] if text and not body else response.reason_phrase
    request_id = response.headers.get("x-request-id") or body.get("requestId")
    error_code = code if isinstance(code, str) else None
    return error_class(error_code, response.status_code)(
        message or f"HTTP {response.status_code}",
        status_code=response.status_code,
        error_code=error_code,
        request_id=request_id if isinstance(request_id, str) else None,
        body=body,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return None if math.isnan(seconds) else max(seconds, 0.0)


def connection_error(exc: httpx.TransportError) -> APIConnectionError:
    """Our exception for an httpx transport failure; raise it ``from exc``."""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"request timed out: {exc}")
    return APIConnectionError(f"connection failed: {exc}")
