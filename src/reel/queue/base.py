"""Dispatch behind one small interface.

The task row is the truth; the queue only says "look at task X". Losing, repeating or
delaying that message never loses a task or charges twice: a repeated delivery finds the task
already claimed, and :meth:`Dispatcher.recover` re-announces queued tasks nobody was told of.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from reel.db.models import Task


class Dispatcher(Protocol):
    #: ``True``: the queue delivers task ids to workers (procrastinate); ``False``: workers
    #: claim queued rows themselves (:func:`reel.queue.claim.claim_next`).
    pushes: bool

    def enqueue(self, session: Session, task: Task) -> None:
        """Announce a queued task, inside the transaction that inserted or requeued it."""
        ...

    def cancel(self, session: Session, task: Task) -> None:
        """Withdraw a canceled task's message; abort it where a worker already runs it."""
        ...

    def recover(self, session: Session) -> int:
        """Announce queued tasks that have no pending message; how many were announced."""
        ...
