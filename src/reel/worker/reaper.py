"""The reaper: housekeeping that no single task's worker can do for itself.

One pass (:meth:`Reaper.run_once`, every ``reaper_seconds`` inside each worker supervisor):
- tasks whose lease expired (their worker died) go back to the queue, or fail with a refund when
  they have used their attempts; queued tasks that waited past ``max_queue_wait`` fail with a
  refund (:func:`reel.service.lifecycle.reap`);
- queued tasks that no queue message will bring to a worker are announced again;
- rows of workers silent for :func:`reel.service.fleet.forget_after` are deleted;
- the retention sweep deletes expired videos (:func:`reel.service.retention.sweep`).

Every step is a guarded statement on the database, so several supervisors may reap at once.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete

from reel.db.models import Worker
from reel.service import fleet, lifecycle, retention
from reel.service.clock import now
from reel.service.context import Services

log = logging.getLogger("reel.reaper")


class Reaper:
    def __init__(self, services: Services) -> None:
        self.services = services

    def run_once(self) -> lifecycle.Reaped:
        settings = self.services.settings
        with self.services.db.write() as session:
            reaped = lifecycle.reap(session, max_queue_wait=settings.max_queue_wait)
            # Requeued tasks (and any whose message was lost) are announced again.
            recovered = self.services.dispatcher.recover(session)
            session.execute(
                delete(Worker).where(Worker.last_seen < now() - fleet.forget_after(settings))
            )
        for name in ("requeued", "failed", "expired"):
            ids = getattr(reaped, name)
            if ids:
                log.warning("reaper %s %d task(s): %s", name, len(ids), ", ".join(ids))
        if recovered:
            log.warning("re-announced %d queued task(s) to the queue", recovered)
        retention.sweep(self.services)
        return reaped
