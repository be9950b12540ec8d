"""`reel workers` and `reel queue`: what the cluster is doing, read from the shared database."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Column, Table

from reel.cli.common import database_errors, open_services, print_table
from reel.config import Settings
from reel.service import fleet
from reel.service.clock import now
from reel.service.context import prepare_database

JsonOpt = Annotated[bool, typer.Option("--json", help="JSON for scripts.")]


def _age(t: float, since: float | None) -> float | None:
    return None if since is None else max(0.0, t - since)


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
    services = open_services(settings)
    try:
        with database_errors(settings):
            prepare_database(services)
            t = now()
            with services.db.read() as session:
                views = fleet.workers(session, stale_after=fleet.stale_after(settings), at=t)
    finally:
        services.close()
    if as_json:
        rows = [
            {
                "id": w.id,
                "host": w.host,
                "pid": w.pid,
                "models": list(w.models),
                "current_task": w.current_task,
                "task_age": _age(t, w.task_started_at),
                "last_seen_age": _age(t, w.last_seen),
                "alive": w.alive,
            }
            for w in views
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(
        Column("worker", no_wrap=True),
        "host",
        "pid",
        "models",
        Column("task", no_wrap=True),
        "running for",
        "seen",
        "state",
    )
    for w in views:
        table.add_row(
            w.id,
            w.host,
            str(w.pid),
            ", ".join(w.models),
            w.current_task or "",
            _ago(_age(t, w.task_started_at)),
            _ago(_age(t, w.last_seen)) + " ago",
            "[green]alive[/green]" if w.alive else "[red]silent[/red]",
        )
    print_table(table)
    if not views:
        typer.echo("no workers are running (start one with `reel worker --models …`)")


def queue(as_json: JsonOpt = False) -> None:
    """Per model: queued and running tasks, the oldest wait, and live workers."""
    settings = Settings()
    services = open_services(settings)
    try:
        with database_errors(settings):
            prepare_database(services)
            t = now()
            with services.db.read() as session:
                live = fleet.workers(session, stale_after=fleet.stale_after(settings), at=t)
                views = fleet.models(session, services.catalog, live)
    finally:
        services.close()
    if as_json:
        rows = [
            {
                "model": v.name,
                "queued": v.queued,
                "running": v.running,
                "oldest_wait": _age(t, v.oldest_queued_at),
                "workers": v.workers,
            }
            for v in views
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("model", "queued", "running", "oldest wait", "live workers")
    for v in views:
        workers_cell = str(v.workers) if v.workers or not v.queued else "[red]0[/red]"
        age = _ago(_age(t, v.oldest_queued_at))
        table.add_row(v.name, str(v.queued), str(v.running), age, workers_cell)
    print_table(table)
