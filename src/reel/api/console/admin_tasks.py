"""`/admin/tasks`: filter, inspect (attempts, worker, timings, error, ledger), cancel, retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from reel.api.console.auth import AdminDep, CheckedForm
from reel.api.console.render import page
from reel.api.deps import ServicesDep
from reel.api.schemas.seed import base_url
from reel.service import admin, audit, retention
from reel.service.errors import ReelError, TaskNotFound
from reel.types import TaskStatus

router = APIRouter(prefix="/admin/tasks", include_in_schema=False)

PAGE_SIZE = 50
NOTICES = {
    "canceled": "Cancel requested. A queued task is refunded now; a running one at its next step.",
    "retried": "Retry accepted: this is a new task with its own charge.",
}


def _day(value: str, *, end: bool) -> float | None:
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (day + timedelta(days=1) if end else day).timestamp()


@router.get("", response_class=HTMLResponse)
def list_tasks(
    request: Request,
    session: AdminDep,
    services: ServicesDep,
    status: str = "",
    key: str = "",
    engine: str = "",
    since: str = "",
    until: str = "",
    page_no: int = 1,
) -> Response:
    problems = []
    state = None
    if status:
        try:
            state = TaskStatus(status)
        except ValueError:
            problems.append(f"Unknown status {status!r}; showing every status.")
    start = _day(since, end=False) if since else None
    stop = _day(until, end=True) if until else None
    if (since and start is None) or (until and stop is None):
        problems.append("Dates must look like 2025-01-31; ignoring the one that does not.")
    flt = admin.TaskFilter(
        status=state, key_id=key or None, engine=engine or None, since=start, until=stop
    )
    page_no = max(1, page_no)
    with services.db.read() as db:
        result = admin.find_tasks(
            services, db, flt, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE
        )
        key_rows = admin.key_rows(db)
        engines = admin.engines(services, db)
    query = {"status": status, "key": key, "engine": engine, "since": since, "until": until}
    base = {k: v for k, v in query.items() if v}
    return page(
        request,
        "admin/tasks.html",
        private=True,
        admin=True,
        csrf=session.csrf,
        result=result,
        filters=query,
        statuses=[s.value for s in TaskStatus],
        keys=[(r.key.id, r.key.name) for r in key_rows],
        engines=engines,
        problems=problems,
        page_no=page_no,
        prev_url=f"?{urlencode({**base, 'page_no': page_no - 1})}" if page_no > 1 else None,
        next_url=f"?{urlencode({**base, 'page_no': page_no + 1})}" if result.has_more else None,
        thumbs={
            r.task.id: _url(request, services, media.thumbnail)
            for r in result.rows
            if (media := retention.media_of(r.task, services.settings)) is not None
        },
    )


def _url(request: Request, services: ServicesDep, key: str) -> str:
    ttl = services.settings.media_url_ttl
    return services.storage.url(key, base_url=base_url(request, services), expires_in=ttl)


def _task_page(
    request: Request,
    csrf: str,
    services: ServicesDep,
    task_id: str,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    try:
        with services.db.read() as db:
            detail = admin.task_detail(db, task_id)
    except TaskNotFound:
        return page(
            request,
            "error.html",
            status_code=404,
            private=True,
            admin=True,
            csrf=csrf,
            title="No such task",
            message="There is no task with that id.",
        )
    task = detail.task
    video = thumb = None
    media = retention.media_of(task, services.settings)
    if media is not None:
        video = _url(request, services, media.video)
        thumb = _url(request, services, media.thumbnail)
    return page(
        request,
        "admin/task.html",
        status_code=status_code,
        private=True,
        admin=True,
        csrf=csrf,
        detail=detail,
        task=task,
        video_url=video,
        thumb_url=thumb,
        retry_refusal=admin.retry_refusal(detail),
        notice=notice,
        error=error,
    )


@router.get("/{task_id}", response_class=HTMLResponse)
def show_task(
    request: Request, task_id: str, session: AdminDep, services: ServicesDep, msg: str = ""
) -> Response:
    return _task_page(request, session.csrf, services, task_id, notice=NOTICES.get(msg))


@router.post("/{task_id}/cancel", response_class=HTMLResponse)
def cancel(
    request: Request, task_id: str, session: AdminDep, _form: CheckedForm, services: ServicesDep
) -> Response:
    try:
        task = admin.cancel(services, task_id, actor=audit.CONSOLE)
    except ReelError as exc:
        return _task_page(
            request, session.csrf, services, task_id, error=exc.message, status_code=409
        )
    return RedirectResponse(f"/admin/tasks/{quote(task.id)}?msg=canceled", 303)


@router.post("/{task_id}/retry", response_class=HTMLResponse)
def retry(
    request: Request, task_id: str, session: AdminDep, _form: CheckedForm, services: ServicesDep
) -> Response:
    try:
        task = admin.retry(services, task_id, actor=audit.CONSOLE)
    except ReelError as exc:
        return _task_page(
            request, session.csrf, services, task_id, error=exc.message, status_code=409
        )
    return RedirectResponse(f"/admin/tasks/{quote(task.id)}?msg=retried", 303)
