"""The API reference: Swagger UI at ``/docs`` and ReDoc at ``/redoc``, from this server alone.

Their scripts and styles come from the installed ``fastapi-offline`` package (which ships the
Swagger UI and ReDoc distributions) and are served from ``/docs/assets/`` on the same origin,
so the pages work offline and load nothing from a CDN. No inline script: the pages run under a
strict Content-Security-Policy (scripts from this origin only), which matters because the
playground keeps API keys in this origin's ``localStorage``.
"""

from __future__ import annotations

from html import escape
from typing import Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

__all__ = ["ASSETS", "content_security_policy", "install"]

#: Where the Swagger UI / ReDoc files and the page's own start-up script are served.
ASSETS: Final = "/docs/assets"


def content_security_policy() -> str:
    """Scripts and connections to this origin only. ReDoc sets its styles inline (CSS-in-JS)
    and searches in a ``blob:`` worker; no inline or remote script runs anywhere."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }


def _page(title: str, head: str, body: str) -> HTMLResponse:
    html = (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        f'<link rel="icon" href="{ASSETS}/favicon.png">\n'
        f"{head}</head>\n<body>\n{body}</body></html>\n"
    )
    return HTMLResponse(html, headers=_headers())


router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    spec = escape(_spec_url(request))
    title = f"{request.app.title} API reference"
    return _page(
        title,
        f'<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">\n',
        f'<div id="swagger-ui" data-spec-url="{spec}"></div>\n'
        f'<script src="{ASSETS}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{ASSETS}/swagger-init.js"></script>\n',
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    spec = escape(_spec_url(request))
    title = f"{request.app.title} API reference"
    return _page(
        title,
        "",
        f'<redoc spec-url="{spec}"></redoc>\n'
        f'<script src="{ASSETS}/redoc.standalone.js"></script>\n',
    )


def _spec_url(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/") + str(request.app.openapi_url)


class _Assets(StaticFiles):
    """Static files with the docs pages' security headers (and long caching: the files change
    only with the installed packages)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update({**_headers(), "Cache-Control": "public, max-age=86400"})
        return response


def install(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their assets on ``app`` (built with docs_url=None)."""
    app.mount(
        ASSETS,
        _Assets(packages=[("fastapi_offline", "static"), ("reel.api", "docs_static")]),
        name="docs-assets",
    )
    app.include_router(router)
