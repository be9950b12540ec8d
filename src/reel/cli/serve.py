"""`reel serve`, `reel worker`, `reel migrate`."""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable
from typing import Annotated

import typer
import uvicorn

from reel.api.app import Background, create_app
from reel.cli.common import database_errors, database_label, fail, open_services
from reel.config import Settings
from reel.db.migrate import StaleSchema, upgrade
from reel.engines.base import EngineConfigError
from reel.logs import RedactSignedQueries, configure_logging
from reel.service.context import Services, prepare_database
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
        with database_errors(services.settings):
            prepare_database(services)
    except StaleSchema as exc:
        services.close()
        fail(str(exc), 2)
    except typer.Exit:
        services.close()
        raise


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts: a taken port fails at once.

    Created with ``IPPROTO_TCP`` named: asyncio turns Nagle off (``TCP_NODELAY``) only on
    connections whose socket says so, and with Nagle on every response written in two parts
    waits for the client's delayed ACK (~40 ms on Linux) before its body leaves."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, announcing Reel only once the app has started on a bound socket."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._announce()


def _banner(settings: Settings, host: str, port: int, workers: int) -> list[str]:
    base = f"http://{_url_host(host)}:{port}"
    admin = f"{base}/admin" + (
        "" if settings.admin_token else " (off until REEL_ADMIN_TOKEN is set)"
    )
    playground = f"{base}/" if settings.console else "off (REEL_CONSOLE=false)"
    return [
        f"Reel listening on http://{f'[{host}]' if ':' in host else host}:{port} "
        f"({workers} worker process{'' if workers == 1 else 'es'})",
        f"  playground  {playground}",
        f"  admin       {admin}",
        f"  API docs    {base}/docs",
        f"  data dir    {settings.data_dir.resolve()}",
        f"  database    {database_label(settings)}",
    ]


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
    sock = _bind(host, port)
    port = int(sock.getsockname()[1])  # the real one when --port 0
    configure_logging(settings.log_level)
    services = open_services(settings)
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
    # Signed media and callback links carry their signature in the query: keep it out of logs.
    logging.getLogger("uvicorn.access").addFilter(RedactSignedQueries())

    def announce() -> None:
        for line in _banner(settings, host, port, count):
            log.info("%s", line)

    try:
        _Server(config, announce).run(sockets=[sock])
    finally:
        sock.close()
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
    services = open_services(settings)
    _prepare(services)
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    if names:
        unknown = set(names) - set(services.catalog.models)
        if unknown:
            services.close()
            fail(f"unknown models: {', '.join(sorted(unknown))}", 2)
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
        fail(exc.message, 2)


def migrate() -> None:
    """Apply database migrations (and, on PostgreSQL, the job queue's schema) and exit."""
    settings = Settings()
    configure_logging(settings.log_level)
    services = open_services(settings)
    try:
        with database_errors(settings):
            upgrade(services.db.engine)
    finally:
        services.close()
    typer.echo("database is up to date")
