"""`/admin`: sign in and out, the overview, usage charts, workers and queues, live updates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from reel.api.console import charts
from reel.api.console.auth import AdminDep, CheckedForm, ConsoleDisabled, safe_next
from reel.api.console.render import page
from reel.api.console.security import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginThrottle,
    admin_enabled,
    login_csrf,
    login_csrf_valid,
    login_nonce,
    new_session,
    session_id,
    token_matches,
    token_tag,
)
from reel.api.deps import ServicesDep
from reel.config import Settings
from reel.service import admin, admin_sessions, fleet, usage
from reel.service.clock import now
from reel.service.context import Services
from reel.types import TaskStatus

router = APIRouter(prefix="/admin", include_in_schema=False)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _throttle(request: Request, settings: Settings) -> LoginThrottle:
    throttle = getattr(request.app.state, "admin_login_throttle", None)
    if throttle is None:
        throttle = LoginThrottle(settings)
        request.app.state.admin_login_throttle = throttle
    return throttle


def _login_page(
    request: Request, settings: Settings, *, next_path: str, error: str | None, status: int
) -> Response:
    nonce = login_nonce()
    response = page(
        request,
        "admin/login.html",
        status_code=status,
        private=True,
        admin=False,
        next_path=next_path,
        login_csrf=login_csrf(settings, nonce),
        error=error,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=900,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, services: ServicesDep, next: str | None = None) -> Response:
    if not admin_enabled(services.settings):
        raise ConsoleDisabled()
    return _login_page(
        request, services.settings, next_path=safe_next(next), error=None, status=200
    )


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, services: ServicesDep) -> Response:
    settings = services.settings
    if not admin_enabled(settings):
        raise ConsoleDisabled()
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or len(nonce) > 64:  # checked before a byte of the body is read
        return _login_page(
            request,
            settings,
            next_path="/admin",
            error="The sign-in form expired. Try again.",
            status=403,
        )
    # The body is capped (reel.api.middleware); a sign-in form has three short fields.
    form = await request.form(max_files=0, max_fields=8, max_part_size=4096)
    token, csrf, target = (form.get(k) for k in ("token", "csrf", "next"))
    next_path = safe_next(target if isinstance(target, str) else None)
    client = request.client.host if request.client else "-"
    throttle = _throttle(request, settings)
    if not login_csrf_valid(
        settings, request.cookies.get(LOGIN_COOKIE), csrf if isinstance(csrf, str) else None
    ):
        return _login_page(
            request,
            settings,
            next_path=next_path,
            error="The sign-in form expired. Try again.",
            status=403,
        )
    if not isinstance(token, str) or not token_matches(settings, token):
        # Only failures are throttled, so others behind the same address (a shared proxy)
        # can never lock out whoever holds the right token.
        if throttle.blocked(client):
            return _login_page(
                request,
                settings,
                next_path=next_path,
                error="Too many failed attempts. Wait a minute and try again.",
                status=429,
            )
        throttle.failed(client)
        return _login_page(
            request, settings, next_path=next_path, error="That token is not right.", status=401
        )
    cookie, session = new_session(settings, now=now())
    admin_sessions.start(
        services,
        session_id(session),
        token_tag=token_tag(settings),
        expires_at=session.expires,
        client=client,
    )
    response = RedirectResponse(next_path, 303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=settings.admin_session_seconds,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
def logout(_form: CheckedForm, session: AdminDep, services: ServicesDep) -> Response:
    """End this session on the server: a copy of its cookie stops working too."""
    admin_sessions.end(services, session_id(session))
    return _signed_out()


@router.post("/logout-everywhere")
def logout_everywhere(_form: CheckedForm, services: ServicesDep) -> Response:
    """End every admin session, on every browser."""
    admin_sessions.end_all(services)
    return _signed_out()


def _signed_out() -> Response:
    response = RedirectResponse("/admin/login", 303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


def _fleet(services: Services) -> tuple[list[fleet.WorkerView], list[fleet.ModelView]]:
    with services.db.read() as session:
        workers = fleet.workers(session, stale_after=fleet.stale_after(services.settings))
        models = fleet.models(session, services.catalog, workers)
    return workers, models


@router.get("", response_class=HTMLResponse)
def overview(request: Request, session: AdminDep, services: ServicesDep) -> Response:
    workers, models = _fleet(services)
    with services.db.read() as db:
        report = usage.usage_report(db, days=14)
        active = admin.find_tasks(
            services, db, admin.TaskFilter(status=TaskStatus.RUNNING), limit=20
        )
        queued = admin.find_tasks(
            services, db, admin.TaskFilter(status=TaskStatus.QUEUED), limit=20
        )
        failures = admin.find_tasks(
            services, db, admin.TaskFilter(status=TaskStatus.FAILED), limit=5
        )
    videos = charts.stacked_by_day([(d.day, d.videos) for d in report.days], report.tiers, "videos")
    return page(
        request,
        "admin/overview.html",
        private=True,
        admin=True,
        csrf=session.csrf,
        report=report,
        today=report.days[-1],
        videos_chart=videos,
        workers=workers,
        models=models,
        active=active.rows + queued.rows,
        failures=failures.rows,
    )


@router.get("/usage", response_class=HTMLResponse)
def usage_page(
    request: Request,
    session: AdminDep,
    services: ServicesDep,
    days: Annotated[int, Query(ge=1, le=366)] = 14,
) -> Response:
    with services.db.read() as db:
        report = usage.usage_report(db, days=days)
    videos = charts.stacked_by_day([(d.day, d.videos) for d in report.days], report.tiers, "videos")
    credits = charts.stacked_by_day(
        [(d.day, d.credits) for d in report.days], report.tiers, "credits"
    )
    timings = charts.paired_bars([(e.engine, e.median_s, e.p95_s) for e in report.engines], "s")
    return page(
        request,
        "admin/usage.html",
        private=True,
        admin=True,
        csrf=session.csrf,
        report=report,
        days=days,
        videos_chart=videos,
        credits_chart=credits,
        timings_chart=timings,
    )


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request, session: AdminDep, services: ServicesDep) -> Response:
    workers, models = _fleet(services)
    return page(
        request,
        "admin/workers.html",
        private=True,
        admin=True,
        csrf=session.csrf,
        workers=workers,
        models=models,
        stale_after=fleet.stale_after(services.settings),
    )


@router.get("/live")
def live(_session: AdminDep, services: ServicesDep) -> JSONResponse:
    """What the overview and workers pages refresh from (JSON; the pages write it as text)."""
    workers, models = _fleet(services)
    with services.db.read() as db:
        running = admin.find_tasks(services, db, admin.TaskFilter(status=TaskStatus.RUNNING))
        queued = admin.find_tasks(services, db, admin.TaskFilter(status=TaskStatus.QUEUED))
    t = now()
    body = {
        "at": t,
        "models": [
            {
                "name": m.name,
                "engine": m.engine,
                "tiers": list(m.tiers),
                "queued": m.queued,
                "running": m.running,
                "workers": m.workers,
                "oldestQueuedSeconds": None
                if m.oldest_queued_at is None
                else round(t - m.oldest_queued_at, 1),
            }
            for m in models
        ],
        "workers": [
            {
                "id": w.id,
                "host": w.host,
                "pid": w.pid,
                "models": list(w.models),
                "alive": w.alive,
                "currentTask": w.current_task,
                "lastSeenSeconds": round(t - w.last_seen, 1),
            }
            for w in workers
        ],
        "active": [
            {
                "id": r.task.id,
                "status": r.task.status,
                "stage": r.task.stage,
                "percent": r.task.percent,
                "prompt": r.task.prompt,
                "keyName": r.key_name,
                "tier": r.task.tier,
                "ageSeconds": round(t - r.task.created_at, 1),
            }
            for r in running.rows + queued.rows
        ],
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
