"""What an operator watches, read from the database (so every process sees the same numbers):
queue depth and oldest wait per model, worker liveness, tasks by status, generation times."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from reel.db.models import Task
from reel.types import TaskStatus

#: Upper bounds (seconds) of the generation-time histogram.
GENERATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800)


@dataclass(frozen=True, slots=True)
class GenerationTimes:
    """Completed tasks of one engine: a cumulative histogram of generation seconds."""

    engine: str
    count: int
    total_seconds: float
    #: (upper bound, tasks at or under it), cumulative, for :data:`GENERATION_BUCKETS`.
    buckets: list[tuple[float, int]]


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
