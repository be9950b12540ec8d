"""`/admin/keys`: create (secret shown once), list, revoke, top up, ledger per key."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from reel.api.console.auth import AdminDep, CheckedForm, field
from reel.api.console.render import page
from reel.api.deps import ServicesDep
from reel.service import admin, audit, keys
from reel.service.errors import NotFound, ReelError

router = APIRouter(prefix="/admin/keys", include_in_schema=False)

NOTICES = {
    "credited": "Credits added.",
    "revoked": "Key revoked. Requests with it are refused from now on.",
}


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _keys_page(
    request: Request,
    csrf: str,
    services: ServicesDep,
    *,
    created: keys.IssuedKey | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with services.db.read() as db:
        rows = admin.key_rows(db)
    return page(
        request,
        "admin/keys.html",
        status_code=status_code,
        private=True,
        admin=True,
        csrf=csrf,
        rows=rows,
        created=created,
        error=error,
        form=form or {"name": "", "credits": "100", "account": ""},
    )


@router.get("", response_class=HTMLResponse)
def list_keys(request: Request, session: AdminDep, services: ServicesDep) -> Response:
    return _keys_page(request, session.csrf, services)


@router.post("", response_class=HTMLResponse)
def create_key(
    request: Request, session: AdminDep, form: CheckedForm, services: ServicesDep
) -> Response:
    name, credits_text = field(form, "name"), field(form, "credits")
    account = field(form, "account").strip() or None
    values = {"name": name, "credits": credits_text, "account": account or ""}
    credits = _int(credits_text or "0")
    if credits is None:
        return _keys_page(
            request,
            session.csrf,
            services,
            error="Credits must be a whole number.",
            form=values,
            status_code=400,
        )
    try:
        issued = admin.issue_key(
            services, name=name, credits=credits, account_id=account, actor=audit.CONSOLE
        )
    except ReelError as exc:
        return _keys_page(
            request, session.csrf, services, error=exc.message, form=values, status_code=400
        )
    return _keys_page(request, session.csrf, services, created=issued)


def _key_page(
    request: Request,
    csrf: str,
    services: ServicesDep,
    key_id: str,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    try:
        with services.db.read() as db:
            key = keys.get(db, key_id)
            entries = admin.key_ledger(db, key_id)
            row = next(r for r in admin.key_rows(db) if r.key.id == key_id)
    except NotFound:
        return page(
            request,
            "error.html",
            status_code=404,
            private=True,
            admin=True,
            csrf=csrf,
            title="No such key",
            message="There is no API key with that id.",
        )
    return page(
        request,
        "admin/key.html",
        status_code=status_code,
        private=True,
        admin=True,
        csrf=csrf,
        key=key,
        row=row,
        entries=entries,
        notice=notice,
        error=error,
    )


@router.get("/{key_id}", response_class=HTMLResponse)
def show_key(
    request: Request, key_id: str, session: AdminDep, services: ServicesDep, msg: str = ""
) -> Response:
    return _key_page(request, session.csrf, services, key_id, notice=NOTICES.get(msg))


@router.post("/{key_id}/credits", response_class=HTMLResponse)
def add_credits(
    request: Request, key_id: str, session: AdminDep, form: CheckedForm, services: ServicesDep
) -> Response:
    credits = _int(field(form, "credits"))
    try:
        if credits is None:
            raise ReelError("Credits must be a whole number.")
        admin.top_up(
            services, key_id, credits, note=field(form, "note") or None, actor=audit.CONSOLE
        )
    except ReelError as exc:
        return _key_page(
            request, session.csrf, services, key_id, error=exc.message, status_code=400
        )
    return RedirectResponse(f"/admin/keys/{quote(key_id)}?msg=credited", 303)


@router.post("/{key_id}/revoke", response_class=HTMLResponse)
def revoke(
    request: Request, key_id: str, session: AdminDep, _form: CheckedForm, services: ServicesDep
) -> Response:
    try:
        admin.revoke_key(services, key_id, actor=audit.CONSOLE)
    except ReelError as exc:
        return _key_page(
            request, session.csrf, services, key_id, error=exc.message, status_code=404
        )
    return RedirectResponse(f"/admin/keys/{quote(key_id)}?msg=revoked", 303)
