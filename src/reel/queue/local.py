"""The embedded queue: the task table itself, claimed by guarded UPDATEs. One machine only.

Workers pull with :func:`reel.queue.claim.claim_next`; there is no message to send or withdraw.
A committed task rings the :class:`~reel.queue.doorbell.Doorbell`, so idle workers look for it
at once rather than at their next poll.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from reel.db.models import Task
from reel.queue.doorbell import Doorbell


class LocalDispatcher:
    #: Workers look for queued rows themselves.
    pushes = False

    def __init__(self, doorbell: Doorbell | None = None) -> None:
        self.doorbell = doorbell

    def enqueue(self, session: Session, task: Task) -> None:  # noqa: ARG002 - the Protocol's
        """Ring the doorbell once the transaction commits (before, a worker would find
        nothing); a rolled-back transaction rings nothing."""
        if self.doorbell is not None and not session.info.get(_RINGS):
            session.info[_RINGS] = True
            event.listen(session, "after_commit", self._ring, once=True)

    def _ring(self, session: Session) -> None:
        session.info.pop(_RINGS, None)
        if self.doorbell is not None:
            self.doorbell.ring()

    def cancel(self, session: Session, task: Task) -> None:
        """Nothing to do: the task row's status and cancel flag are all workers read."""

    def recover(self, session: Session) -> int:  # noqa: ARG002 - the Protocol's signature
        """Nothing can be lost: the table is the queue."""
        return 0


_RINGS = "reel.queue.rings"
