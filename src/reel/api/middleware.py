"""ASGI middleware of every request (the metrics middleware sits with the metrics)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reel.api import errors
from reel.config import Settings
from reel.media.clips import UPLOAD_MAX_BYTES
from reel.service.errors import BodyTooLarge

#: Routes that take an uploaded video (capped at ``reel.media.clips.UPLOAD_MAX_BYTES``).
VIDEO_UPLOAD_ROUTES = frozenset(
    {"/v1/videos/extensions", "/v1/videos/edits", "/v1/videos/characters"}
)
#: The admin sign-in form: a token, a CSRF token and a path.
LOGIN_BODY_BYTES = 16 * 1024


class RequestIdMiddleware:
    """Tags every request with an id (``X-Request-Id``), echoed in responses and error bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = "req_" + secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)


def body_limits(settings: Settings) -> Callable[[str, str], int]:
    """The body cap of each request: ``REEL_MAX_BODY_BYTES``, plus ``REEL_IMAGE_MAX_BYTES``
    for a video create on /v1 (it may upload its image), plus the video upload cap for an
    extension, an edit or a character (they may upload a video), and less for the admin
    sign-in."""
    upload = settings.max_body_bytes + settings.image_max_bytes
    video_upload = settings.max_body_bytes + UPLOAD_MAX_BYTES

    def limit_for(method: str, path: str) -> int:
        if method == "POST" and path.rstrip("/") == "/v1/videos":
            return upload
        if method == "POST" and path.rstrip("/") in VIDEO_UPLOAD_ROUTES:
            return video_upload
        if path.rstrip("/") == "/admin/login":
            return min(LOGIN_BODY_BYTES, settings.max_body_bytes)
        return settings.max_body_bytes

    return limit_for


class _TooLarge(Exception):
    """Raised from ``receive`` once a body passes its cap."""


class BodyLimitMiddleware:
    """Caps every request body as it streams, whatever ``Content-Length`` or chunked encoding
    claim: a declared length over the cap is refused before anything is read, and a body that
    grows past it stops being read at that byte. Either way the answer is ``413`` in the
    surface's error shape (``INVALID_PARAMETER`` / ``invalid_value``), whatever the route
    made of the cut-off body. ``limit_for`` gives the cap of a request (method, path)."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > limit:
            await _refuse(scope, receive, send, limit)
            return
        seen = 0
        exceeded = False
        started = False

        async def capped_receive() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                raise _TooLarge()
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _TooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the route's answer to a cut-off body is replaced by the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _refuse(scope, receive, send, limit)


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    request = Request(scope, receive)
    response = errors.render(
        request, BodyTooLarge(f"request body larger than {limit} bytes", param="body")
    )
    response.headers["Connection"] = "close"  # the rest of the body is never read
    await response(scope, receive, send)
