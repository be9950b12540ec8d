"""`/admin/accounts` (accounts, their keys and quotas, usage statements to download) and
`/admin/audit` (the operators' audit log)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from reel.api.console.auth import AdminDep
from reel.api.console.render import page
from reel.api.deps import ServicesDep
from reel.service import accounts, audit, keys
from reel.service import usage_export as statement
from reel.service.clock import now
from reel.service.errors import NotFound, ReelError

router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("/accounts", response_class=HTMLResponse)
def list_accounts(request: Request, session: AdminDep, services: ServicesDep) -> Response:
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
        private=True,
        admin=True,
        csrf=session.csrf,
        rows=rows,
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
