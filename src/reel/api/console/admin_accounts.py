"""`/admin/accounts` (accounts, their keys and quotas, usage statements to download) and
`/admin/audit` (the operators' audit log)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from reel.api.console.auth import AdminDep, CheckedForm, field
from reel.api.console.render import page
from reel.api.deps import ServicesDep
from reel.service import accounts, admin, audit, keys
from reel.service import usage_export as statement
from reel.service.clock import now
from reel.service.errors import InvalidParameter, NotFound, ReelError

router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("/accounts", response_class=HTMLResponse)
def list_accounts(request: Request, session: AdminDep, services: ServicesDep) -> Response:
    return _accounts_page(request, session.csrf, services)


@router.post("/accounts/{account_id}/limits", response_class=HTMLResponse)
def set_limits(
    request: Request, account_id: str, session: AdminDep, form: CheckedForm, services: ServicesDep
) -> Response:
    """Quotas and the creation limit from the account's form: a blank field removes a limit."""
    changes: dict[str, int | None] = {}
    try:
        for name in accounts.LIMIT_FIELDS:
            text = field(form, name).strip()
            if text and not text.isdigit():
                raise InvalidParameter(f"{name.replace('_', ' ')} must be a whole number")
            changes[name] = int(text) if text else None
        admin.set_limits(services, account_id, changes, actor=audit.CONSOLE)
    except NotFound as exc:
        return _accounts_page(request, session.csrf, services, error=exc.message, status_code=404)
    except ReelError as exc:
        return _accounts_page(request, session.csrf, services, error=exc.message, status_code=400)
    return _accounts_page(request, session.csrf, services, notice=f"Limits of {account_id} saved.")


def _accounts_page(
    request: Request,
    csrf: str,
    services: ServicesDep,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    with services.db.read() as db:
        rows = [
            (
                account,
                accounts.limits_of(account),
                total,
                live,
                keys.list_keys(db, account_id=account.id),
            )
            for account, total, live in accounts.list_accounts(db)
        ]
    return page(
        request,
        "admin/accounts.html",
        status_code=status_code,
        private=True,
        admin=True,
        csrf=csrf,
        rows=rows,
        notice=notice,
        error=error,
    )


@router.get("/accounts/{account_id}/usage")
def download_usage(
    account_id: str,
    _session: AdminDep,
    services: ServicesDep,
    since: Annotated[str | None, Query(alias="from")] = None,
    until: Annotated[str | None, Query(alias="to")] = None,
    fmt: Annotated[str, Query(alias="format")] = "csv",
) -> Response:
    """The account's usage statement as a file (the same rows as ``reel usage export``)."""
    try:
        with services.db.read() as db:
            accounts.get(db, account_id)
        if fmt not in statement.FORMATS:
            raise NotFound("format must be csv or json")
        span = statement.parse_range(since or None, until or None, at=now())
    except ReelError as exc:
        return Response(exc.message, status_code=404 if isinstance(exc, NotFound) else 400)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return StreamingResponse(
        statement.stream(services.db, account_id, span, fmt),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="usage-{account_id}.{fmt}"'},
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_log(
    request: Request, session: AdminDep, services: ServicesDep, target: str = ""
) -> Response:
    with services.db.read() as db:
        entries = audit.entries(db, target=target or None, limit=200)
    return page(
        request,
        "admin/audit.html",
        private=True,
        admin=True,
        csrf=session.csrf,
        entries=entries,
        target=target,
    )
