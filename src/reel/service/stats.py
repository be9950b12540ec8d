"""What an operator watches, read from the database (so every process sees the same numbers):
queue depth and oldest wait per model, worker liveness, tasks by status, generation times."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from reel.db.models import Task, Worker
from reel.service.clock import now
from reel.types import TaskStatus

#: Upper bounds (seconds) of the generation-time histogram.
GENERATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    models: list[str]
    current_task: str | None
    #: Seconds the current task has been running.
    task_age: float | None
    #: Seconds since the worker last refreshed its row.
    last_seen_age: float
    alive: bool


@dataclass(frozen=True, slots=True)
class ModelQueue:
    model: str
    queued: int
    running: int
    #: Seconds the oldest queued task has waited.
    oldest_wait: float | None
    #: Live workers serving this model.
    workers: int


@dataclass(frozen=True, slots=True)
class GenerationTimes:
    """Completed tasks of one engine: a cumulative histogram of generation seconds."""

    engine: str
    count: int
    total_seconds: float
    #: (upper bound, tasks at or under it), cumulative, for :data:`GENERATION_BUCKETS`.
    buckets: list[tuple[float, int]]


def alive_within(heartbeat_seconds: float) -> float:
    """A worker row older than this is considered gone (three missed heartbeats)."""
    return max(3 * heartbeat_seconds, 10.0)


def workers(session: Session, *, heartbeat_seconds: float) -> list[WorkerInfo]:
    t = now()
    limit = alive_within(heartbeat_seconds)
    rows = session.scalars(select(Worker).order_by(Worker.host, Worker.id)).all()
    return [
        WorkerInfo(
            id=w.id,
            host=w.host,
            pid=w.pid,
            models=list(w.models or []),
            current_task=w.current_task,
            task_age=None if w.task_started_at is None else max(0.0, t - w.task_started_at),
            last_seen_age=max(0.0, t - w.last_seen),
            alive=t - w.last_seen <= limit,
        )
        for w in rows
    ]


def queues(
    session: Session, *, models: Sequence[str], heartbeat_seconds: float
) -> list[ModelQueue]:
    """One row per model: the configured ones plus any that still have unfinished tasks."""
    t = now()
    counts = session.execute(
        select(
            Task.model,
            func.sum(case((Task.status == TaskStatus.QUEUED, 1), else_=0)),
            func.sum(case((Task.status == TaskStatus.RUNNING, 1), else_=0)),
            func.min(case((Task.status == TaskStatus.QUEUED, Task.created_at), else_=None)),
        )
        .where(Task.status.in_([TaskStatus.QUEUED, TaskStatus.RUNNING]))
        .group_by(Task.model)
    ).all()
    by_model = {m: (int(q or 0), int(r or 0), oldest) for m, q, r, oldest in counts}
    live: dict[str, int] = {}
    for w in workers(session, heartbeat_seconds=heartbeat_seconds):
        if w.alive:
            for m in w.models:
                live[m] = live.get(m, 0) + 1
    names = list(dict.fromkeys([*models, *sorted(by_model)]))
    result = []
    for name in names:
        queued, running, oldest = by_model.get(name, (0, 0, None))
        result.append(
            ModelQueue(
                model=name,
                queued=queued,
                running=running,
                oldest_wait=None if oldest is None else max(0.0, t - oldest),
                workers=live.get(name, 0),
            )
        )
    return result


def tasks_by_status(session: Session) -> dict[str, int]:
    counts = {s.value: 0 for s in TaskStatus}
    for status, n in session.execute(select(Task.status, func.count()).group_by(Task.status)):
        counts[status] = int(n)
    return counts


def generation_times(session: Session) -> list[GenerationTimes]:
    seconds = Task.generation_seconds
    columns = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in GENERATION_BUCKETS]
    rows = session.execute(
        select(Task.engine, func.count(), func.sum(seconds), *columns)
        .where(Task.status == TaskStatus.COMPLETED, seconds.is_not(None))
        .group_by(Task.engine)
    ).all()
    return [
        GenerationTimes(
            engine=engine or "unknown",
            count=int(count),
            total_seconds=float(total or 0.0),
            buckets=[(b, int(n or 0)) for b, n in zip(GENERATION_BUCKETS, under, strict=True)],
        )
        for engine, count, total, *under in rows
    ]
