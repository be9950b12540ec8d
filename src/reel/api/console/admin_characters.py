"""`/admin/characters`: the keys' characters (name, key, when made, frames) and a delete."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from reel.api.console.auth import AdminDep, CheckedForm, field
from reel.api.console.render import page
from reel.api.deps import ServicesDep
from reel.service import admin, audit
from reel.service.errors import ReelError

router = APIRouter(prefix="/admin/characters", include_in_schema=False)

#: Characters shown at once, newest first.
LIMIT = 200
NOTICES = {"deleted": "Character deleted. Prompts naming it no longer use it."}


@router.get("", response_class=HTMLResponse)
def list_characters(
    request: Request, session: AdminDep, services: ServicesDep, key: str = "", msg: str = ""
) -> Response:
    return _page(request, session.csrf, services, key.strip(), notice=NOTICES.get(msg))


@router.post("/{character_id}/delete", response_class=HTMLResponse)
def delete_character(
    request: Request,
    character_id: str,
    session: AdminDep,
    form: CheckedForm,
    services: ServicesDep,
) -> Response:
    key = field(form, "key")
    try:
        admin.delete_character(services, character_id, actor=audit.CONSOLE)
    except ReelError as exc:
        return _page(request, session.csrf, services, key, error=exc.message, status_code=404)
    query = urlencode({"key": key, "msg": "deleted"} if key else {"msg": "deleted"})
    return RedirectResponse(f"/admin/characters?{query}", 303)


def _page(
    request: Request,
    csrf: str,
    services: ServicesDep,
    key_id: str,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    with services.db.read() as db:
        rows = admin.character_rows(db, key_id=key_id or None, limit=LIMIT)
    return page(
        request,
        "admin/characters.html",
        status_code=status_code,
        private=True,
        admin=True,
        csrf=csrf,
        rows=rows,
        key_id=key_id,
        limit=LIMIT,
        retention=services.settings.video_retention,
        notice=notice,
        error=error,
    )
