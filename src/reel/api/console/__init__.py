"""The web console: a playground at ``/`` and an operator console at ``/admin``.

Server-rendered Jinja2 pages with a little JavaScript from ``static/`` (no build step, no CDN).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from reel.api.console import (
    admin,
    admin_accounts,
    admin_characters,
    admin_keys,
    admin_tasks,
    auth,
    playground,
)
from reel.api.console.render import STATIC
from reel.config import Settings

__all__ = ["install"]


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the console's routes and static files on ``app``."""
    auth.install_handlers(app)
    app.mount(STATIC, StaticFiles(packages=[("reel.api.console", "static")]), name="console")
    if settings.console:
        app.include_router(playground.router)
    app.include_router(admin.router)
    app.include_router(admin_keys.router)
    app.include_router(admin_accounts.router)
    app.include_router(admin_tasks.router)
    app.include_router(admin_characters.router)
