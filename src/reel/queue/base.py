"""Dispatch behind one small interface.

The task row is the truth; the queue only says "look at task X".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.orm import Session

from reel.db.models import Task


class Dispatcher(Protocol):
    def enqueue(self, session: Session, task: Task) -> None:
        """Announce a new task, inside the transaction that inserted it."""
        ...

    def claim(
        self, session: Session, *, worker_id: str, models: Sequence[str], lease_until: float
    ) -> Task | None:
        """Take the next queued task of ``models`` (attempts + 1, lease set), or ``None``."""
        ...
