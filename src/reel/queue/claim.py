"""The claim: one guarded UPDATE that moves a queued task to running under a new lease.

Both queues end here. The embedded one picks the next queued row itself; the distributed one
names the task its job was about. Either way, only one claimer can win a row, and a second
delivery of the same task finds nothing to claim.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlalchemy import ColumnElement, Float, bindparam, func, select, update
from sqlalchemy.orm import Session

from reel.db.models import Task
from reel.types import Stage, TaskStatus

Clock = Callable[[], float]


def claim_where(
    session: Session,
    guard: ColumnElement[bool],
    *,
    worker_id: str,
    lease_until: float,
    clock: Clock = time.time,
) -> Task | None:
    """The claim, one statement and one round trip: it also stamps ``started_at`` (the first
    claim's time, read from ``clock`` as the statement runs; a retry keeps it) and returns
    the whole row."""
    claimed_at = bindparam("claimed_at", callable_=clock, type_=Float)
    claim = (
        update(Task)
        .where(guard, Task.status == TaskStatus.QUEUED)
        .values(
            status=TaskStatus.RUNNING,
            worker_id=worker_id,
            lease_until=lease_until,
            attempts=Task.attempts + 1,
            stage=Stage.LOADING,
            percent=0.0,
            started_at=func.coalesce(Task.started_at, claimed_at),
        )
        .returning(Task)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return session.scalars(claim).one_or_none()


def claim_task(
    session: Session,
    task_id: str,
    *,
    worker_id: str,
    models: Sequence[str],
    lease_until: float,
    clock: Clock = time.time,
) -> Task | None:
    """Claim ``task_id`` if it is still queued and one of ``models``; else ``None``."""
    guard = (Task.id == task_id) & Task.model.in_(list(models))
    return claim_where(session, guard, worker_id=worker_id, lease_until=lease_until, clock=clock)


def claim_next(
    session: Session,
    *,
    worker_id: str,
    models: Sequence[str],
    lease_until: float,
    clock: Clock = time.time,
) -> Task | None:
    """Claim the next queued task of ``models`` (highest priority, then oldest), or ``None``.

    The embedded queue's pull: run inside a write (``BEGIN IMMEDIATE``) transaction, so one
    claimer wins.
    """
    candidate = (
        select(Task.id)
        .where(Task.status == TaskStatus.QUEUED, Task.model.in_(list(models)))
        .order_by(Task.priority.desc(), Task.created_at, Task.id)
        .limit(1)
        .scalar_subquery()
    )
    return claim_where(
        session, Task.id == candidate, worker_id=worker_id, lease_until=lease_until, clock=clock
    )
