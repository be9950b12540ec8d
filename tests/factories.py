"""Plain factories for tests."""

from __future__ import annotations

import time

from sqlalchemy import select

from reel import queue
from reel.db.models import Task
from reel.queue import claim_task
from reel.service import keys
from reel.service.context import Services
from reel.types import TaskStatus


def make_key(services: Services, *, credits: int = 100, name: str = "test") -> keys.IssuedKey:
    with services.db.write() as session:
        return keys.issue(session, name=name, credits=credits)


def claim_next(services: Services, worker_id: str = "w1", *, lease: float = 5) -> Task | None:
    """Claim the oldest queued task as a worker would: the embedded queue's pull claim, or,
    with a pushing queue, the claim of the delivered id."""
    lease_until = time.time() + lease
    with services.db.write() as session:
        if not services.dispatcher.pushes:
            return queue.claim_next(
                session, worker_id=worker_id, models=["sandbox"], lease_until=lease_until
            )
        oldest = session.scalars(
            select(Task.id).where(Task.status == TaskStatus.QUEUED).order_by(Task.created_at)
        ).first()
        return claim_task(
            session,
            oldest or "none",
            worker_id=worker_id,
            models=["sandbox"],
            lease_until=lease_until,
        )
