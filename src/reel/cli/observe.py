"""`reel workers` and `reel queue`: what the cluster is doing, read from the shared database."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from reel.api.app import prepare_database
from reel.config import Settings
from reel.service import stats
from reel.service.context import build_services

console = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON for scripts.")]


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def workers(as_json: JsonOpt = False) -> None:
    """Workers that advertise themselves: host, models, current task, last heartbeat."""
    settings = Settings()
    services = build_services(settings)
    try:
        prepare_database(services)
        with services.db.read() as session:
            rows = stats.workers(session, heartbeat_seconds=settings.heartbeat_seconds)
    finally:
        services.close()
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(w) for w in rows], indent=2))
        return
    table = Table("worker", "host", "pid", "models", "task", "running for", "seen", "state")
    for w in rows:
        table.add_row(
            w.id,
            w.host,
            str(w.pid),
            ", ".join(w.models),
            w.current_task or "",
            _ago(w.task_age),
            _ago(w.last_seen_age) + " ago",
            "[green]alive[/green]" if w.alive else "[red]silent[/red]",
        )
    console.print(table)
    if not rows:
        console.print("no workers are running (start one with `reel worker --models …`)")


def queue(as_json: JsonOpt = False) -> None:
    """Per model: queued and running tasks, the oldest wait, and live workers."""
    settings = Settings()
    services = build_services(settings)
    try:
        prepare_database(services)
        with services.db.read() as session:
            rows = stats.queues(
                session,
                models=list(services.catalog.models),
                heartbeat_seconds=settings.heartbeat_seconds,
            )
    finally:
        services.close()
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(q) for q in rows], indent=2))
        return
    table = Table("model", "queued", "running", "oldest wait", "live workers")
    for q in rows:
        workers_cell = str(q.workers) if q.workers or not q.queued else "[red]0[/red]"
        table.add_row(q.model, str(q.queued), str(q.running), _ago(q.oldest_wait), workers_cell)
    console.print(table)
