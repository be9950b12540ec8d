"""The embedded queue: the task table itself, claimed by guarded UPDATEs. One machine only.

Workers pull with :func:`reel.queue.claim.claim_next`; there is no message to send or withdraw.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from reel.db.models import Task


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
