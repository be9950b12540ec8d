"""The distributed queue: procrastinate on the service's own PostgreSQL database.

Each model is a queue; a job says only "run task X" (``{"task_id": …}``). The job is deferred
on the very connection and transaction that insert the task row and charge for it, so a
rolled-back create leaves no job and a committed one always has one. Workers take jobs of
their models only (``FOR UPDATE SKIP LOCKED``, woken by LISTEN/NOTIFY), in priority order.

procrastinate's schema is part of Reel's migrations (revision 0003), pinned to
:data:`PINNED_VERSION`; the few queries here that read its tables are tested against it.
"""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING, Final

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from reel.config import Settings
from reel.db.models import Task

if TYPE_CHECKING:
    import procrastinate
    import psycopg

#: The procrastinate release whose schema migration 0003 applies.
PINNED_VERSION: Final = "3.10.0"
#: The one job kind: run the task named in its arguments.
TASK_NAME: Final = "reel.run_task"
#: Housekeeping jobs (stalled-job retry); every worker also listens here.
MAINTENANCE_QUEUE: Final = "reel.maintenance"
_RECOVER_LOCK: Final = 0x5EE2  # advisory lock: one recovery sweep at a time

_PENDING_JOBS: Final = text(
    "SELECT id FROM procrastinate_jobs"
    " WHERE args->>'task_id' = :task_id AND status IN ('todo', 'doing')"
)
# Queued tasks that no job will bring to a worker: none waiting, and none being delivered to a
# worker that is still alive (a job is fetched a moment before its task is claimed).
_ORPHANS: Final = text(
    "SELECT t.id FROM tasks t WHERE t.status = 'queued' AND NOT EXISTS ("
    " SELECT 1 FROM procrastinate_jobs j"
    " LEFT JOIN procrastinate_workers w ON w.id = j.worker_id"
    " WHERE j.args->>'task_id' = t.id AND (j.status = 'todo' OR (j.status = 'doing'"
    " AND w.last_heartbeat > now() - make_interval(secs => :stalled))))"
)


class QueueUnavailable(RuntimeError):
    """The procrastinate queue cannot be used with this installation or database."""


def stalled_seconds(settings: Settings) -> float:
    """A worker silent this long is dead to the queue: its jobs are retried or replaced."""
    return max(4 * settings.heartbeat_seconds, 5.0)


def conninfo(settings: Settings) -> str:
    """The libpq URL of the service's database (procrastinate speaks psycopg directly)."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "postgresql":
        raise QueueUnavailable("REEL_QUEUE=procrastinate needs a PostgreSQL REEL_DATABASE_URL")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def make_app(settings: Settings, *, max_connections: int = 3) -> procrastinate.App:
    """A procrastinate app on the service's database; opened only by workers."""
    try:
        import procrastinate
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise QueueUnavailable(
            "the procrastinate queue needs the scale extra: pip install 'reel-server[scale]'"
        ) from exc
    installed = importlib.metadata.version("procrastinate")
    if installed != PINNED_VERSION:
        raise QueueUnavailable(
            f"this Reel is built for procrastinate {PINNED_VERSION} (its schema is in the "
            f"migrations), but {installed} is installed: pip install 'reel-server[scale]'"
        )
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(settings), min_size=1, max_size=max_connections
    )
    return procrastinate.App(connector=connector)


def _driver_connection(session: Session) -> psycopg.Connection[object]:
    """The psycopg connection under the session's transaction."""
    connection = session.connection().connection.driver_connection
    if connection is None or type(connection).__module__.split(".")[0] != "psycopg":
        raise QueueUnavailable(
            "REEL_QUEUE=procrastinate needs the psycopg driver (postgresql+psycopg://…)"
        )
    return connection


class ProcrastinateDispatcher:
    #: procrastinate delivers task ids to the workers of each model's queue.
    pushes = True

    def __init__(self, app: procrastinate.App, *, stalled_seconds: float) -> None:
        self.app = app
        self.stalled_seconds = stalled_seconds

    def enqueue(self, session: Session, task: Task) -> None:
        self.app.configure_task(
            TASK_NAME,
            queue=task.model,
            priority=task.priority,
            connection=_driver_connection(session),
        ).defer(task_id=task.id)

    def cancel(self, session: Session, task: Task) -> None:
        """Delete a waiting job; ask the worker running one to abort (it stops at a step)."""
        connection = _driver_connection(session)
        for job_id in session.scalars(_PENDING_JOBS, {"task_id": task.id}).all():
            self.app.job_manager.cancel_job_by_id(
                job_id, abort=True, delete_job=True, connection=connection
            )

    def recover(self, session: Session) -> int:
        """Re-announce queued tasks without a waiting job: requeued after a worker died, or
        whose job was lost. A task announced twice runs once (the second claim finds it
        taken)."""
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _RECOVER_LOCK})
        orphans = session.scalars(_ORPHANS, {"stalled": self.stalled_seconds}).all()
        for task_id in orphans:
            task = session.get(Task, task_id)
            if task is not None:
                self.enqueue(session, task)
        return len(orphans)
