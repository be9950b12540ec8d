"""Jinja2 pages: one autoescaping environment, display filters, security headers on every page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from reel import __version__
from reel.api.console.security import security_headers
from reel.service.clock import now

STATIC: Final = "/static/console"


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _ago(ts: float | None) -> str:
    if ts is None:
        return "—"
    return _span(max(0.0, now() - ts)) + " ago"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _number(value: int) -> str:
    return f"{value:,}".replace(",", "\u202f")


_env = Environment(
    loader=PackageLoader("reel.api.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(when=_when, iso=_iso, ago=_ago, span=_span, percent=_percent, number=_number)
_env.globals.update(static=STATIC, version=__version__)


def page(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    private: bool = False,
    **context: object,
) -> HTMLResponse:
    """Render ``template`` with ``context``; every value is escaped unless marked safe."""
    html = _env.get_template(template).render(request=request, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status_code, headers=security_headers(private=private))
