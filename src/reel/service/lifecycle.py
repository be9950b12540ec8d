"""Worker-side transitions of a task. Each is one guarded UPDATE fenced by the lease.

A lease is (task id, worker id, attempt). Only the holder of the current attempt can move a
running task on; a worker whose lease was reaped finds its updates match no row and stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from reel.db.models import Task
from reel.db.session import changed
from reel.service import ledger, webhooks
from reel.service.clock import now
from reel.service.moderation import MODERATION
from reel.types import Stage, TaskStatus

#: A running task handed back to the queue: no holder, no lease, progress reset.
_BACK_TO_QUEUE: Mapping[str, object] = {
    "status": TaskStatus.QUEUED,
    "worker_id": None,
    "lease_until": None,
    "stage": Stage.QUEUED,
    "percent": 0.0,
}


@dataclass(frozen=True, slots=True)
class Lease:
    task_id: str
    worker_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Beat:
    held: bool
    cancel_requested: bool


def _held(lease: Lease) -> ColumnElement[bool]:
    return (
        (Task.id == lease.task_id)
        & (Task.status == TaskStatus.RUNNING)
        & (Task.worker_id == lease.worker_id)
        & (Task.attempts == lease.attempt)
    )


def lease_of(task: Task) -> Lease:
    assert task.worker_id is not None
    return Lease(task.id, task.worker_id, task.attempts)


def models_with_capacity(session: Session, concurrency: Mapping[str, int]) -> list[str]:
    """The models whose running tasks are below their ``concurrency`` (models-file setting)."""
    running = dict(
        session.execute(
            select(Task.model, func.count())
            .where(Task.status == TaskStatus.RUNNING, Task.model.in_(list(concurrency)))
            .group_by(Task.model)
        ).all()
    )
    return [m for m, limit in concurrency.items() if running.get(m, 0) < limit]


def heartbeat(
    session: Session,
    lease: Lease,
    *,
    lease_until: float,
    stage: Stage | None = None,
    percent: float | None = None,
) -> Beat:
    values: dict[str, object] = {"lease_until": lease_until}
    if stage is not None:
        values["stage"] = stage
    if percent is not None:
        values["percent"] = round(max(0.0, min(100.0, percent)), 1)
    row = session.execute(
        update(Task).where(_held(lease)).values(**values).returning(Task.cancel_requested)
    ).first()
    if row is None:
        return Beat(held=False, cancel_requested=False)
    return Beat(held=True, cancel_requested=bool(row[0]))


#: Key in ``Task.extra`` holding what an engine saved to resume its work on a later attempt.
ENGINE_STATE = "engine_state"
#: Key in ``Task.extra``: when an upstream last called the task's callback link (epoch seconds).
UPSTREAM_CALLBACK = "upstream_callback_at"


#: Key in ``Task.extra``: the C2PA manifest a worker signed the video with (operator-only).
PROVENANCE = "provenance"


#: Keys of ``Task.extra`` that workers write about one run (operator-only facts and resumable
#: state). They describe how a task ran, not what was asked, so new tasks never copy them.
RUN_EXTRA_KEYS = frozenset({ENGINE_STATE, "upstream", UPSTREAM_CALLBACK, MODERATION, PROVENANCE})


def request_extra(task: Task, *, drop: frozenset[str] = frozenset()) -> dict[str, object]:
    """What ``task.extra`` says about the request itself, for a retry or remix to carry over."""
    return {k: v for k, v in (task.extra or {}).items() if k not in RUN_EXTRA_KEYS | drop}


def engine_state(task: Task) -> Mapping[str, object]:
    state = (task.extra or {}).get(ENGINE_STATE)
    return state if isinstance(state, dict) else {}


def save_engine_state(session: Session, lease: Lease, state: Mapping[str, object]) -> bool:
    """Record an engine's resumable state on the task (hidden from users). False: lease lost."""
    task = session.get(Task, lease.task_id, populate_existing=True)
    if task is None:
        return False
    extra = {**(task.extra or {}), ENGINE_STATE: dict(state)}
    return bool(changed(session.execute(update(Task).where(_held(lease)).values(extra=extra))))


def note(session: Session, lease: Lease, key: str, value: Mapping[str, object]) -> bool:
    """Merge ``{key: value}`` into the running task's hidden ``extra``. False: lease lost."""
    task = session.get(Task, lease.task_id, populate_existing=True)
    if task is None:
        return False
    extra = {**(task.extra or {}), key: dict(value)}
    return bool(changed(session.execute(update(Task).where(_held(lease)).values(extra=extra))))


def note_upstream_callback(session: Session, task_id: str) -> bool:
    """Record that an upstream called back for a running task (a wake-up for its worker).

    Tasks in any other state are left alone. The row is locked while ``extra`` is rewritten,
    so a concurrent engine checkpoint is never lost (at worst this mark is)."""
    task = session.scalars(
        select(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.RUNNING)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if task is None:
        return False
    extra = {**(task.extra or {}), UPSTREAM_CALLBACK: now()}
    return bool(
        changed(
            session.execute(
                update(Task)
                .where(Task.id == task_id, Task.status == TaskStatus.RUNNING)
                .values(extra=extra)
            )
        )
    )


def upstream_callback(session: Session, task_id: str) -> object:
    """When the task's upstream last called back, or ``None``."""
    extra = session.scalar(select(Task.extra).where(Task.id == task_id))
    return (extra or {}).get(UPSTREAM_CALLBACK) if isinstance(extra, dict) else None


def complete(
    session: Session,
    lease: Lease,
    *,
    video_key: str,
    engine: str,
    generation_seconds: float,
    metadata: Mapping[str, object] | None = None,
) -> bool:
    """Finish the attempt. ``metadata`` (operator-only facts from the engine) is merged into
    ``extra`` in the same UPDATE; the engine's resumable state is dropped with it."""
    values: dict[str, object] = {}
    task = session.get(Task, lease.task_id, populate_existing=True)
    if task is not None and (metadata or ENGINE_STATE in (task.extra or {})):
        kept = {k: v for k, v in (task.extra or {}).items() if k != ENGINE_STATE}
        values["extra"] = {**kept, **(metadata or {})}
    done = changed(
        session.execute(
            update(Task)
            .where(_held(lease))
            .values(
                status=TaskStatus.COMPLETED,
                video_key=video_key,
                engine=engine,
                generation_seconds=generation_seconds,
                finished_at=now(),
                stage=Stage.STORING,
                percent=100.0,
                lease_until=None,
                **values,
            )
        )
    )
    if done:
        webhooks.record_event(session, lease.task_id, TaskStatus.COMPLETED)
    return bool(done)


def fail(
    session: Session,
    lease: Lease,
    *,
    code: str,
    message: str,
    retryable: bool = False,
    engine: str | None = None,
) -> TaskStatus | None:
    """Requeue when retryable with attempts left; else fail and refund. ``None``: lease lost."""
    task = session.get(Task, lease.task_id, populate_existing=True)
    if task is None:
        return None
    if retryable and task.attempts < task.max_attempts:
        moved = changed(
            session.execute(
                update(Task).where(_held(lease)).values(**_BACK_TO_QUEUE, error_message=message)
            )
        )
        return TaskStatus.QUEUED if moved else None
    return _finish_refunded(session, _held(lease), TaskStatus.FAILED, code, message, engine)


def cancel_running(session: Session, lease: Lease) -> bool:
    return (
        _finish_refunded(
            session, _held(lease), TaskStatus.CANCELED, "TASK_CANCELED", "Canceled by request", None
        )
        is not None
    )


def release(session: Session, lease: Lease) -> bool:
    """Hand the task back without spending the attempt (the worker is draining)."""
    moved = changed(
        session.execute(
            update(Task).where(_held(lease)).values(**_BACK_TO_QUEUE, attempts=Task.attempts - 1)
        )
    )
    return bool(moved)


def _finish_refunded(
    session: Session,
    guard: ColumnElement[bool],
    status: TaskStatus,
    code: str,
    message: str,
    engine: str | None,
) -> TaskStatus | None:
    task_id = session.execute(
        update(Task)
        .where(guard)
        .values(
            status=status,
            error_code=code,
            error_message=message,
            finished_at=now(),
            lease_until=None,
            **({"engine": engine} if engine else {}),
        )
        .returning(Task.id)
    ).scalar_one_or_none()
    if task_id is None:
        return None
    ledger.refund_task(session, task_id, note=code.lower())
    webhooks.record_event(session, task_id, status)
    return status


@dataclass(frozen=True, slots=True)
class Reaped:
    requeued: list[str]
    failed: list[str]
    expired: list[str]


def reap(session: Session, *, max_queue_wait: float) -> Reaped:
    """Requeue running tasks whose lease expired (or fail them when attempts are spent), and
    fail queued tasks that waited longer than ``max_queue_wait``. Every failure is refunded."""
    t = now()
    requeued: list[str] = []
    failed: list[str] = []
    stale = session.execute(
        select(Task.id, Task.worker_id, Task.attempts, Task.max_attempts).where(
            Task.status == TaskStatus.RUNNING, Task.lease_until < t
        )
    ).all()
    for task_id, worker_id, attempts, max_attempts in stale:
        lease = Lease(task_id, worker_id or "", attempts)
        guard = _held(lease) & (Task.lease_until < t)
        if attempts < max_attempts:
            if changed(session.execute(update(Task).where(guard).values(**_BACK_TO_QUEUE))):
                requeued.append(task_id)
        elif _finish_refunded(
            session,
            guard,
            TaskStatus.FAILED,
            "GENERATION_FAILED",
            "The worker running this task stopped responding",
            None,
        ):
            failed.append(task_id)
    expired: list[str] = []
    too_old = session.scalars(
        select(Task.id).where(
            Task.status == TaskStatus.QUEUED,
            Task.started_at.is_(None),
            Task.created_at < t - max_queue_wait,
        )
    ).all()
    for task_id in too_old:
        guard = (Task.id == task_id) & (Task.status == TaskStatus.QUEUED)
        if _finish_refunded(
            session,
            guard,
            TaskStatus.FAILED,
            "GENERATION_FAILED",
            "No worker started this task in time",
            None,
        ):
            expired.append(task_id)
    return Reaped(requeued, failed, expired)
