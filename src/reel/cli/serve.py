"""`reel serve`, `reel worker`, `reel migrate`."""

from __future__ import annotations

import logging
import signal
from typing import Annotated

import typer
import uvicorn

from reel.api.app import Background, create_app
from reel.config import Settings
from reel.db.migrate import StaleSchema, upgrade
from reel.engines.base import EngineConfigError
from reel.logs import configure_logging
from reel.service.context import Services, build_services, prepare_database
from reel.worker.delivery import DeliveryLoop
from reel.worker.preflight import check_models
from reel.worker.supervisor import Supervisor

log = logging.getLogger("reel")


def _load_settings() -> Settings:
    """Settings for a long-running process; refuses ones other machines would disagree with."""
    settings = Settings()
    problems = settings.deployment_problems()
    if problems:
        for problem in problems:
            typer.echo(f"error: {problem}", err=True)
        typer.echo("see docs/deploy.md", err=True)
        raise typer.Exit(2)
    return settings


def _prepare(services: Services) -> None:
    try:
        prepare_database(services)
    except StaleSchema as exc:
        services.close()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(help="Generation worker processes to supervise (default: REEL_WORKERS or 1)."),
    ] = None,
    no_workers: Annotated[
        bool, typer.Option("--no-workers", help="Serve the API only; run `reel worker` elsewhere.")
    ] = False,
) -> None:
    """Run the API and supervise generation worker processes."""
    settings = _load_settings()
    configure_logging(settings.log_level)
    services = build_services(settings)
    _prepare(services)
    count = 0 if no_workers else (settings.workers if workers is None else workers)
    if count:
        _preflight(services, None)
    supervisor = Supervisor(services, processes=count) if count else None
    # Webhook deliveries run in this process, never in a generation worker.
    deliveries = DeliveryLoop(services, base_url=f"http://{_url_host(host)}:{port}")
    # The supervisor runs with the app's lifespan: on SIGTERM uvicorn stops accepting, finishes
    # in-flight requests, then the workers drain, all before the process exits.
    background: list[Background] = [deliveries]
    if supervisor is not None:
        background.append(supervisor)
    app = create_app(settings, services=services, background=background)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    log.info("Reel listening on http://%s:%d (%d worker process(es))", host, port, count)
    try:
        uvicorn.Server(config).run()
    finally:
        services.close()


def _url_host(host: str) -> str:
    """How this process is reached from itself, for links when REEL_PUBLIC_URL is unset."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def worker(
    processes: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "--processes",
            "-c",
            "-p",
            min=1,
            help="Tasks run at once, each in its own worker process (one per GPU).",
        ),
    ] = 1,
    models: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated model names to serve (default: all in the models file)."
        ),
    ] = None,
) -> None:
    """Run generation workers only (no API)."""
    settings = _load_settings()
    configure_logging(settings.log_level)
    services = build_services(settings)
    _prepare(services)
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    if names:
        unknown = set(names) - set(services.catalog.models)
        if unknown:
            raise typer.BadParameter(f"unknown models: {', '.join(sorted(unknown))}")
    _preflight(services, names)
    supervisor = Supervisor(services, processes=processes, models=names)

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: draining", signum)
        supervisor.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    supervisor.start()
    supervisor.wait()
    services.close()


def _preflight(services: Services, models: list[str] | None) -> None:
    """Refuse to start workers whose models cannot serve as configured (clear message, exit 2)."""
    try:
        check_models(services.catalog, models or list(services.catalog.models), services.settings)
    except EngineConfigError as exc:
        services.close()
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc


def migrate() -> None:
    """Apply database migrations (and, on PostgreSQL, the job queue's schema) and exit."""
    settings = Settings()
    configure_logging(settings.log_level)
    services = build_services(settings)
    try:
        upgrade(services.db.engine)
    finally:
        services.close()
    typer.echo("database is up to date")
