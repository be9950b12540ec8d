"""The embedded queue: the task table itself, claimed by guarded UPDATEs. One machine only."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from reel.db.models import Task
from reel.types import Stage, TaskStatus


class LocalDispatcher:
    def enqueue(self, session: Session, task: Task) -> None:
        """Nothing to do: workers poll the table for queued rows."""

    def claim(
        self, session: Session, *, worker_id: str, models: Sequence[str], lease_until: float
    ) -> Task | None:
        """Run inside a write (``BEGIN IMMEDIATE``) transaction, so one claimer wins."""
        candidate = (
            select(Task.id)
            .where(Task.status == TaskStatus.QUEUED, Task.model.in_(list(models)))
            .order_by(Task.priority.desc(), Task.created_at, Task.id)
            .limit(1)
            .scalar_subquery()
        )
        task_id = session.execute(
            update(Task)
            .where(Task.id == candidate, Task.status == TaskStatus.QUEUED)
            .values(
                status=TaskStatus.RUNNING,
                worker_id=worker_id,
                lease_until=lease_until,
                attempts=Task.attempts + 1,
                stage=Stage.LOADING,
                percent=0.0,
            )
            .returning(Task.id)
        ).scalar_one_or_none()
        return None if task_id is None else session.get(Task, task_id, populate_existing=True)
