"""Admin access: the session dependency, CSRF-checked forms, and what happens when they fail."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from reel.api.console.render import page
from reel.api.console.security import SESSION_COOKIE as SESSION_COOKIE
from reel.api.console.security import (
    AdminSession,
    admin_enabled,
    csrf_valid,
    read_session,
    session_id,
    token_tag,
)
from reel.api.deps import ServicesDep
from reel.service import admin_sessions
from reel.service.clock import now


class ConsoleDisabled(Exception):
    """``REEL_ADMIN_TOKEN`` is not set."""


class SignInRequired(Exception):
    def __init__(self, next_path: str, *, json: bool) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.json = json


class CsrfRejected(Exception):
    """A state-changing request without this session's token, or from another origin."""


def safe_next(value: str | None) -> str:
    """Where to go after signing in: only a path inside the admin console."""
    if not value or not value.startswith("/admin") or value.startswith("//") or "\\" in value:
        return "/admin"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/admin"
    return value


def admin_session(request: Request, services: ServicesDep) -> AdminSession:
    settings = services.settings
    if not admin_enabled(settings):
        raise ConsoleDisabled()
    session = read_session(settings, request.cookies.get(SESSION_COOKIE), now=now())
    if session is not None and not admin_sessions.active(
        services, session_id(session), token_tag=token_tag(settings)
    ):
        session = None  # signed out (here or everywhere), or started with an older token
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        json = request.url.path.startswith("/admin/live")
        raise SignInRequired(target, json=json)
    return session


AdminDep = Annotated[AdminSession, Depends(admin_session)]


def same_origin(request: Request, public_url: str | None) -> bool:
    """Browsers say where a request comes from; anything cross-site is refused. The origin
    must be this request's host, or ``REEL_PUBLIC_URL``'s (behind a proxy that rewrites Host)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    allowed = {request.headers.get("host", "")}
    if public_url:
        allowed.add(urlsplit(public_url).netloc)
    return urlsplit(origin).netloc in allowed


async def checked_form(request: Request, session: AdminDep, services: ServicesDep) -> FormData:
    # The session (AdminDep) and the origin are checked before the body is read; the body is
    # capped as it streams (reel.api.middleware), and so are its parts.
    if not same_origin(request, services.settings.public_url):
        raise CsrfRejected()
    form = await request.form(max_files=0, max_fields=64, max_part_size=16 * 1024)
    token = form.get("csrf")
    presented = token if isinstance(token, str) else None
    if not csrf_valid(session, presented):
        raise CsrfRejected()
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ConsoleDisabled)
    async def _disabled(request: Request, _exc: ConsoleDisabled) -> Response:
        return page(request, "admin/disabled.html", status_code=404, admin=False)

    @app.exception_handler(SignInRequired)
    async def _sign_in(_request: Request, exc: SignInRequired) -> Response:
        if exc.json:
            return JSONResponse(
                {"success": False, "error": "Sign in again", "errorCode": "LOGIN_REQUIRED"}, 401
            )
        return RedirectResponse(f"/admin/login?next={quote(exc.next_path, safe='/')}", 303)

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, _exc: CsrfRejected) -> Response:
        return page(
            request,
            "error.html",
            status_code=403,
            private=True,
            admin=True,
            title="Request refused",
            message="This form was not sent from this console or its session changed. "
            "Reload the page and try again.",
        )
