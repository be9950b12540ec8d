"""Workers and models as an operator sees them: who is alive, what each serves, queue depth.

The one liveness rule, used by the CLI, ``/metrics``, the console and the reaper alike: a worker
advertises itself in the ``workers`` table and a thread of its own refreshes ``last_seen`` every
``heartbeat_seconds``, idle or busy; while it runs a task, the task's lease (renewed by the
progress heartbeat) is a second sign of life. A worker is **alive** when it was seen within
:func:`stale_after` or holds an unexpired lease. A row silent for :func:`forget_after` is
deleted by the reaper (a worker that exits cleanly deletes its own).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reel.config import Settings
from reel.db.models import Task, Worker
from reel.service.catalog import Catalog
from reel.service.clock import now
from reel.types import TaskStatus


def stale_after(settings: Settings) -> float:
    """Seconds without a sign of life after which a worker counts as dead: three missed
    heartbeats, and never less than 10 s."""
    return max(3 * settings.heartbeat_seconds, 10.0)


def forget_after(settings: Settings) -> float:
    """Seconds of silence after which a dead worker's row is deleted."""
    return 4 * max(settings.heartbeat_seconds, settings.lease_seconds, stale_after(settings))


@dataclass(frozen=True, slots=True)
class WorkerView:
    id: str
    host: str
    pid: int
    models: tuple[str, ...]
    current_task: str | None
    task_started_at: float | None
    started_at: float
    last_seen: float
    alive: bool
    #: Per model, what it does besides generating (``None``: not advertised).
    operations: dict[str, list[str]] | None = None


@dataclass(frozen=True, slots=True)
class ModelView:
    """A models-file entry with its queue: tasks waiting, running, and live workers serving it."""

    name: str
    engine: str
    concurrency: int
    tiers: tuple[str, ...]
    queued: int
    running: int
    workers: int
    oldest_queued_at: float | None


def workers(session: Session, *, stale_after: float, at: float | None = None) -> list[WorkerView]:
    """Every advertised worker, alive ones first; ``stale_after`` seconds without a sign of life
    marks one dead (its row stays until it exits cleanly or an operator clears it)."""
    t = now() if at is None else at
    leases = dict(
        session.execute(
            select(Task.worker_id, func.max(Task.lease_until))
            .where(Task.status == TaskStatus.RUNNING, Task.worker_id.is_not(None))
            .group_by(Task.worker_id)
        ).all()
    )
    views = []
    for row in session.scalars(select(Worker).order_by(Worker.started_at)):
        lease = leases.get(row.id)
        alive = row.last_seen >= t - stale_after or (lease is not None and lease >= t)
        views.append(
            WorkerView(
                id=row.id,
                host=row.host,
                pid=row.pid,
                models=tuple(row.models or ()),
                current_task=row.current_task,
                task_started_at=row.task_started_at,
                started_at=row.started_at,
                last_seen=row.last_seen,
                alive=alive,
                operations=row.operations,
            )
        )
    return sorted(views, key=lambda w: (not w.alive, w.started_at))


def models(session: Session, catalog: Catalog, live: list[WorkerView]) -> list[ModelView]:
    """Each model of the catalog (plus any that still has tasks) with its queue depth."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for model, status, count in session.execute(
        select(Task.model, Task.status, func.count())
        .where(Task.status.in_((TaskStatus.QUEUED, TaskStatus.RUNNING)))
        .group_by(Task.model, Task.status)
    ):
        counts[model][status] = int(count)
    oldest = dict(
        session.execute(
            select(Task.model, func.min(Task.created_at))
            .where(Task.status == TaskStatus.QUEUED)
            .group_by(Task.model)
        ).all()
    )
    serving: dict[str, int] = defaultdict(int)
    for w in live:
        if w.alive:
            for m in w.models:
                serving[m] += 1
    names = list(catalog.models) + sorted(set(counts) - set(catalog.models))
    views = []
    for name in names:
        spec = catalog.models.get(name)
        views.append(
            ModelView(
                name=name,
                engine=spec.engine if spec else "(not in the models file)",
                concurrency=spec.concurrency if spec else 0,
                tiers=tuple(t.value for t, m in catalog.tiers.items() if m == name),
                queued=counts[name].get(TaskStatus.QUEUED, 0),
                running=counts[name].get(TaskStatus.RUNNING, 0),
                workers=serving.get(name, 0),
                oldest_queued_at=oldest.get(name),
            )
        )
    return views


def operations_of(session: Session, settings: Settings, model: str) -> frozenset[str] | None:
    """What the live workers serving ``model`` say it does besides generating ("extend",
    "edit", "references"); ``None`` when no live worker says (none is up, or all predate the
    ``workers.operations`` column)."""
    found: set[str] | None = None
    for w in workers(session, stale_after=stale_after(settings)):
        if w.alive and model in w.models and w.operations is not None and model in w.operations:
            found = (found or set()) | set(w.operations[model])
    return None if found is None else frozenset(found)
