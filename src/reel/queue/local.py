"""The embedded queue: the task table itself, claimed by guarded UPDATEs. One machine only."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from reel.db.models import Task
from reel.queue.claim import claim_where
from reel.types import TaskStatus


class LocalDispatcher:
    #: Workers look for queued rows themselves.
    pushes = False

    def enqueue(self, session: Session, task: Task) -> None:
        """Nothing to do: workers poll the table for queued rows."""

    def cancel(self, session: Session, task: Task) -> None:
        """Nothing to do: the task row's status and cancel flag are all workers read."""

    def recover(self, session: Session) -> int:  # noqa: ARG002 - the Protocol's signature
        """Nothing can be lost: the table is the queue."""
        return 0

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
        return claim_where(
            session, Task.id == candidate, worker_id=worker_id, lease_until=lease_until
        )
