"""create_app(settings): the app factory: lifespan, middleware, routers, error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI

from reel import __version__
from reel.api import console, docs, errors
from reel.api.metrics import Metrics, MetricsMiddleware
from reel.api.middleware import BodyLimitMiddleware, RequestIdMiddleware, body_limits
from reel.api.openapi import DESCRIPTION, install_openapi
from reel.api.routes import health, hooks, media, metrics, openai, openai_ops, seed
from reel.config import Settings
from reel.service.context import Services, build_services, prepare_database
from reel.service.ratelimit import RateLimiter

log = logging.getLogger("reel.api")


class Background(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    background: Sequence[Background] = (),
) -> FastAPI:
    """The ASGI app. Given ``services``, their settings win (one source of truth).

    ``background`` jobs (the worker supervisor of `reel serve`) start with the app and stop
    after it has stopped accepting requests, before the process exits.
    """
    if services is not None:
        settings = services.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        svc = services or build_services(settings)
        prepare_database(svc)
        app.state.services = svc
        app.state.metrics = Metrics(svc)
        app.state.limiter = RateLimiter(
            create=settings.rate_limit_create,
            status=settings.rate_limit_status,
            storage_uri=settings.resolved_rate_limit_storage,
            key_prefix=settings.redis_prefix,
        )
        sandboxed = [
            t.value
            for t, m in svc.catalog.tiers.items()
            if m in svc.catalog.models and svc.catalog.models[m].engine == "sandbox"
        ]
        if sandboxed:
            log.warning(
                "%s served by the SANDBOX engine: labelled test videos, no real generation "
                "(map tiers to real models in a models file: docs/models.md)",
                "every tier is"
                if len(sandboxed) == len(svc.catalog.tiers)
                else f"tiers {', '.join(sandboxed)} are",
            )
        for job in background:
            job.start()
        try:
            yield
        finally:
            for job in background:
                job.stop()
            if owned:
                svc.close()

    app = FastAPI(
        title="Reel",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # /docs and /redoc are served by reel.api.docs from packaged assets (no CDN).
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limits(settings))
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.include_router(seed.router)
    app.include_router(openai_ops.router)  # before /v1/videos/{video_id}: "characters" is no id
    app.include_router(openai.router)
    app.include_router(media.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(hooks.router)
    console.install(app, settings)
    docs.install(app)
    install_openapi(app)
    return app
