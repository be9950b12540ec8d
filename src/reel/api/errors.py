"""THE table from domain error to HTTP status, and the error bodies of each surface."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reel.db.session import DatabaseBusy
from reel.service import errors as e

log = logging.getLogger("reel.api")
T = TypeVar("T")

STATUS: Final[Mapping[type[e.ReelError], int]] = {
    e.LoginRequired: 401,
    e.RateLimited: 429,
    e.QuotaExceeded: 429,
    e.ActiveTaskLimit: 429,
    e.InsufficientCredits: 402,
    e.PromptRequired: 400,
    e.ImageRequired: 400,
    e.ImageUrlsRequired: 400,
    e.ImageFetchFailed: 400,
    e.InvalidParameter: 400,
    e.BodyTooLarge: 413,
    e.TaskIdRequired: 400,
    e.TaskNotFound: 404,
    e.TaskNotCancelable: 409,
    e.TaskNotRetryable: 409,
    e.NotFound: 404,
    e.Expired: 410,
    e.GenerationFailed: 500,
    e.ServiceBusy: 503,
    e.InternalError: 500,
    e.IdempotencyKeyReused: 422,
    e.IdempotencyInProgress: 409,
    e.VideoNotReady: 400,
    e.MediaExpired: 410,
    e.ContentPolicyViolation: 400,
}

# --- the OpenAI-compatible surface (/v1/...) ----------------------------------------------------

#: Where /v1 answers with another status than the seed surface: OpenAI reports an empty balance
#: as 429 ``insufficient_quota`` (and tells its SDK not to retry).
OPENAI_STATUS: Final[Mapping[type[e.ReelError], int]] = {e.InsufficientCredits: 429}

#: (error.type, error.code) on /v1; others are ("invalid_request_error" | "server_error", the
#: lower-cased errorCode).
OPENAI_ERRORS: Final[Mapping[type[e.ReelError], tuple[str, str]]] = {
    e.LoginRequired: ("invalid_request_error", "invalid_api_key"),
    e.QuotaExceeded: ("insufficient_quota", "insufficient_quota"),
    e.RateLimited: ("requests", "rate_limit_exceeded"),
    e.ActiveTaskLimit: ("requests", "active_task_limit_exceeded"),
    e.InsufficientCredits: ("insufficient_quota", "insufficient_quota"),
    e.TaskNotFound: ("invalid_request_error", "video_not_found"),
    e.TaskNotCancelable: ("invalid_request_error", "video_not_cancelable"),
    e.InvalidParameter: ("invalid_request_error", "invalid_value"),
    e.PromptRequired: ("invalid_request_error", "missing_required_parameter"),
    e.ImageFetchFailed: ("invalid_request_error", "invalid_image_url"),
    e.MediaExpired: ("invalid_request_error", "video_expired"),
    e.ContentPolicyViolation: ("invalid_request_error", "moderation_blocked"),
}

#: Errors the OpenAI SDK must not retry although their status says it may.
_OPENAI_NO_RETRY: Final = (e.InsufficientCredits, e.QuotaExceeded)


def _lookup(table: Mapping[type[e.ReelError], T], exc: e.ReelError) -> T | None:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return None


def openai_code(error_code: str) -> str:
    """The /v1 ``error.code`` of a failed task whose seed ``errorCode`` is ``error_code``."""
    for cls, (_, code) in OPENAI_ERRORS.items():
        if cls.code == error_code:
            return code
    return error_code.lower()


def status_for(exc: e.ReelError, *, surface: str = "seed") -> int:
    if surface == "openai":
        override = _lookup(OPENAI_STATUS, exc)
        if override is not None:
            return override
    return _lookup(STATUS, exc) or 500


def surface_of(request: Request) -> str:
    """Which API's error shape a request gets, by its path."""
    path = request.url.path
    return "openai" if path == "/v1" or path.startswith("/v1/") else "seed"


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "-"))


def seed_body(exc: e.ReelError, request: Request) -> dict[str, object]:
    body: dict[str, object] = {"success": False, "error": exc.message, "errorCode": exc.code}
    body.update(exc.extra)
    if isinstance(exc, e.InternalError):
        body["requestId"] = request_id(request)
    return body


def openai_body(exc: e.ReelError, request: Request, status: int) -> dict[str, object]:
    kind, code = _lookup(OPENAI_ERRORS, exc) or (
        "server_error" if status >= 500 else "invalid_request_error",
        exc.code.lower(),
    )
    message = exc.message
    if isinstance(exc, e.InternalError):
        message = f"{message} (request {request_id(request)})"
    param = exc.extra.get("param")
    return {
        "error": {
            "message": message,
            "type": kind,
            "param": param if isinstance(param, str) else None,
            "code": code,
        }
    }


def render(request: Request, exc: e.ReelError) -> JSONResponse:
    surface = surface_of(request)
    status = status_for(exc, surface=surface)
    headers = dict(exc.headers)
    if isinstance(exc, e.ServiceBusy):
        headers.setdefault("Retry-After", "1")
    if surface == "openai":
        if isinstance(exc, _OPENAI_NO_RETRY):
            headers["x-should-retry"] = "false"
        body = openai_body(exc, request, status)
    else:
        body = seed_body(exc, request)
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Every failure leaves in the contract's shape: never FastAPI's 422, never a stack trace."""

    @app.exception_handler(e.ReelError)
    async def _reel(request: Request, exc: e.ReelError) -> JSONResponse:
        return render(request, exc)

    @app.exception_handler(DatabaseBusy)
    async def _busy(request: Request, _exc: DatabaseBusy) -> JSONResponse:
        return render(request, e.ServiceBusy("The database is busy; retry shortly"))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        param = ".".join(loc) or "request"
        return render(
            request, e.InvalidParameter(f"{param}: {first.get('msg', 'invalid')}", param=param)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            err: e.ReelError = e.NotFound()
        elif exc.status_code == 405:
            err = e.InvalidParameter("Method not allowed for this route", param="method")
        else:
            err = e.InvalidParameter(str(exc.detail), param="request")
        response = render(request, err)
        if exc.status_code == 405:
            response.status_code = 405
        return response

    @app.exception_handler(Exception)
    async def _unknown(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error (request %s)", request_id(request), exc_info=exc)
        return render(request, e.InternalError())
