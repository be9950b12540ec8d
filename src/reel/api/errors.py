"""THE table from domain error to HTTP status, and the error bodies of each surface."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reel.db.session import DatabaseBusy
from reel.service import errors as e

log = logging.getLogger("reel.api")

STATUS: Final[Mapping[type[e.ReelError], int]] = {
    e.LoginRequired: 401,
    e.RateLimited: 429,
    e.ActiveTaskLimit: 429,
    e.InsufficientCredits: 402,
    e.PromptRequired: 400,
    e.ImageRequired: 400,
    e.ImageUrlsRequired: 400,
    e.ImageFetchFailed: 400,
    e.InvalidParameter: 400,
    e.TaskIdRequired: 400,
    e.TaskNotFound: 404,
    e.TaskNotCancelable: 409,
    e.TaskNotRetryable: 409,
    e.NotFound: 404,
    e.Expired: 410,
    e.GenerationFailed: 500,
    e.ServiceBusy: 503,
    e.InternalError: 500,
}


def status_for(exc: e.ReelError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 500


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "-"))


def seed_body(exc: e.ReelError, request: Request) -> dict[str, object]:
    body: dict[str, object] = {"success": False, "error": exc.message, "errorCode": exc.code}
    body.update(exc.extra)
    if isinstance(exc, e.InternalError):
        body["requestId"] = request_id(request)
    return body


def render(request: Request, exc: e.ReelError) -> JSONResponse:
    status = status_for(exc)
    headers = dict(exc.headers)
    if isinstance(exc, e.ServiceBusy):
        headers.setdefault("Retry-After", "1")
    return JSONResponse(seed_body(exc, request), status_code=status, headers=headers)


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
