"""Operator use cases: find and inspect tasks, cancel or retry them, manage keys and credits,
list and delete the keys' characters.

A retry never reopens a finished task: it is a new task, with a new charge to the same key,
that records the original's id in ``extra["retryOf"]``. A failed task has at most one retry
that has not failed or been canceled: its n-th retry carries the unique ``retry_key``
``<task id>:<n>``, so concurrent retries of one task insert (and charge) exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reel.db.models import ApiKey, Character, LedgerEntry, Task
from reel.db.session import changed
from reel.service import accounts, audit, character_frames, keys, ledger, tasks, webhooks
from reel.service.clock import now
from reel.service.context import Services
from reel.service.errors import InvalidParameter, NotFound, TaskNotFound, TaskNotRetryable
from reel.types import TaskStatus

RETRY_OF = tasks.RETRY_OF


@dataclass(frozen=True, slots=True)
class TaskFilter:
    status: TaskStatus | None = None
    key_id: str | None = None
    #: The engine that ran it, or, before that is known, the engine its model is served by.
    engine: str | None = None
    #: Created at or after (epoch seconds).
    since: float | None = None
    #: Created before (epoch seconds).
    until: float | None = None


@dataclass(frozen=True, slots=True)
class TaskRow:
    task: Task
    key_name: str


@dataclass(frozen=True, slots=True)
class TaskPage:
    rows: list[TaskRow]
    total: int
    offset: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.rows) < self.total


@dataclass(frozen=True, slots=True)
class TaskDetail:
    task: Task
    key: ApiKey
    ledger: list[LedgerEntry]
    retry_of: str | None
    retries: list[Task]

    @property
    def can_cancel(self) -> bool:
        return self.task.status in tasks.ACTIVE

    @property
    def can_retry(self) -> bool:
        return retry_refusal(self) is None


@dataclass(frozen=True, slots=True)
class KeyRow:
    key: ApiKey
    tasks: int
    active: int
    last_task_at: float | None


def find_tasks(
    services: Services, session: Session, flt: TaskFilter, *, limit: int = 50, offset: int = 0
) -> TaskPage:
    """Tasks matching ``flt``, newest first."""
    query = select(Task, ApiKey.name).join(ApiKey, ApiKey.id == Task.key_id)
    conditions = []
    if flt.status is not None:
        conditions.append(Task.status == flt.status)
    if flt.key_id:
        conditions.append(Task.key_id == flt.key_id)
    if flt.engine:
        served = [m.name for m in services.catalog.models.values() if m.engine == flt.engine]
        conditions.append(
            (Task.engine == flt.engine) | (Task.engine.is_(None) & Task.model.in_(served))
        )
    if flt.since is not None:
        conditions.append(Task.created_at >= flt.since)
    if flt.until is not None:
        conditions.append(Task.created_at < flt.until)
    total = session.scalar(select(func.count()).select_from(Task).where(*conditions)) or 0
    rows = session.execute(
        query.where(*conditions)
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return TaskPage([TaskRow(t, name) for t, name in rows], total, offset, limit)


def engines(services: Services, session: Session) -> list[str]:
    """Engine names to filter by: those configured and those that ran a task."""
    used = session.scalars(select(Task.engine).where(Task.engine.is_not(None)).distinct())
    return sorted(services.catalog.engines | {e for e in used if e})


def task_detail(session: Session, task_id: str) -> TaskDetail:
    task = session.get(Task, task_id)
    if task is None:
        raise TaskNotFound()
    key = keys.get(session, task.key_id)
    entries = list(
        session.scalars(
            select(LedgerEntry).where(LedgerEntry.task_id == task.id).order_by(LedgerEntry.id)
        )
    )
    origin = (task.extra or {}).get(RETRY_OF)
    return TaskDetail(
        task=task,
        key=key,
        ledger=entries,
        retry_of=origin if isinstance(origin, str) else None,
        retries=_retries(session, task),
    )


def _retries(session: Session, task: Task) -> list[Task]:
    return list(
        session.scalars(
            select(Task)
            .where(
                Task.key_id == task.key_id,
                Task.created_at >= task.created_at,
                Task.extra[RETRY_OF].as_string() == task.id,
            )
            .order_by(Task.created_at)
        )
    )


def retry_refusal(detail: TaskDetail) -> str | None:
    """Why ``detail.task`` cannot be retried now, or ``None`` when it can."""
    if detail.task.status != TaskStatus.FAILED:
        return "only a failed task can be retried"
    if detail.key.revoked_at is not None:
        return "its API key is revoked"
    for retry in detail.retries:
        if retry.status != TaskStatus.FAILED and retry.status != TaskStatus.CANCELED:
            return f"it was already retried as {retry.id}"
    return None


def retry(services: Services, task_id: str, *, actor: str = audit.CLI) -> Task:
    """A new task with the original's request and price, charged to the same key."""
    with services.db.read() as session:
        detail = task_detail(session, task_id)
    refusal = retry_refusal(detail)
    if refusal is not None:
        raise TaskNotRetryable(f"Cannot retry {task_id}: {refusal}")
    old = detail.task
    cmd = tasks.repeat(
        old,
        drop=frozenset({RETRY_OF}),
        extra={RETRY_OF: old.id},
        retry_key=f"{old.id}:{len(detail.retries)}",
    )
    try:
        new = tasks.create(services, detail.key, cmd)
    except IntegrityError as exc:
        with services.db.read() as session:
            if session.scalar(select(Task.id).where(Task.retry_key == cmd.retry_key)) is None:
                raise
        raise TaskNotRetryable(f"Cannot retry {task_id}: it is being retried already") from exc
    with services.db.write() as session:
        audit.record(
            session,
            actor=actor,
            action="task.retry",
            target=task_id,
            before={"status": old.status},
            after={"retry": new.id, "credits": new.credits},
        )
    return new


def cancel(services: Services, task_id: str, *, actor: str = audit.CLI) -> Task:
    """Cancel any key's task, as its owner could (queued: now; running: at the next step)."""
    with services.db.read() as session:
        task = session.get(Task, task_id)
        if task is None:
            raise TaskNotFound()
        key = keys.get(session, task.key_id)
    before = task.status
    canceled = tasks.cancel(services, key, task_id)
    with services.db.write() as session:
        audit.record(
            session,
            actor=actor,
            action="task.cancel",
            target=task_id,
            before={"status": before},
            after={"status": canceled.status, "cancelRequested": canceled.cancel_requested},
        )
    return canceled


# --- keys --------------------------------------------------------------------------------
def key_rows(session: Session) -> list[KeyRow]:
    """Every key with its task counts; live keys first, newest first."""
    stats = {
        key_id: (int(total), int(active or 0), last)
        for key_id, total, active, last in session.execute(
            select(
                Task.key_id,
                func.count(),
                func.sum(case((Task.status.in_(tasks.ACTIVE), 1), else_=0)),
                func.max(Task.created_at),
            ).group_by(Task.key_id)
        )
    }
    rows = [KeyRow(k, *stats.get(k.id, (0, 0, None))) for k in keys.list_keys(session)]
    return sorted(rows, key=lambda r: (r.key.revoked_at is not None, -r.key.created_at))


def issue_key(
    services: Services,
    *,
    name: str,
    credits: int,
    account_id: str | None = None,
    actor: str = audit.CLI,
) -> keys.IssuedKey:
    """A new key in a new account, or in ``account_id`` (sharing its balance and tasks)."""
    with services.db.write() as session:
        issued = keys.issue(session, name=name, credits=credits, account_id=account_id)
        audit.record(
            session,
            actor=actor,
            action="key.create",
            target=issued.id,
            after={"name": issued.name, "account": issued.account, "credits": credits},
        )
        return issued


def top_up(
    services: Services,
    key_id: str,
    credits: int,
    *,
    note: str | None = None,
    actor: str = audit.CLI,
) -> int:
    """Grant credits to the key's account (or, given an ``acct_…`` id, to that account);
    returns the new balance."""
    if note is not None and len(note) > 200:
        raise InvalidParameter("note must be at most 200 characters", param="note")
    with services.db.write() as session:
        if key_id.startswith("acct_"):
            account_id, by_key = accounts.get(session, key_id).id, None
        else:
            key = keys.get(session, key_id)
            if key.revoked_at is not None:
                raise InvalidParameter("this key is revoked", param="key")
            account_id, by_key = key.account_id, key_id
        before = accounts.get(session, account_id).balance
        after = ledger.grant(
            session, by_key, credits, note=note or "top-up", account_id=account_id
        ).balance_after
        audit.record(
            session,
            actor=actor,
            action="credits.grant",
            target=account_id,
            before={"credits": before},
            after={"credits": after, "key": by_key, "note": note},
        )
        return after


def set_webhook(
    services: Services, key_id: str, url: str | None, *, actor: str = audit.CLI
) -> None:
    """Point a key's webhook events at ``url`` (checked by the SSRF guard), or stop them."""
    target = (
        None if url is None else webhooks.check_target(url, services.webhook_policy, param="url")
    )
    with services.db.write() as session:
        before = keys.get(session, key_id).webhook_url
        webhooks.set_url(session, key_id, target)
        audit.record(
            session,
            actor=actor,
            action="key.webhook",
            target=key_id,
            before={"webhookUrl": before},
            after={"webhookUrl": target},
        )


def rotate_webhook_secret(services: Services, key_id: str, *, actor: str = audit.CLI) -> str:
    """A new webhook signing secret for the key (shown once); the old one stops verifying."""
    with services.db.write() as session:
        secret = webhooks.rotate_secret(session, key_id)
        audit.record(session, actor=actor, action="key.webhook_secret", target=key_id)
        return secret


def revoke_key(services: Services, key_id: str, *, actor: str = audit.CLI) -> ApiKey:
    with services.db.write() as session:
        before = keys.get(session, key_id).revoked_at
        row = keys.revoke(session, key_id)
        audit.record(
            session,
            actor=actor,
            action="key.revoke",
            target=key_id,
            before={"revokedAt": before},
            after={"revokedAt": row.revoked_at, "account": row.account_id},
        )
        return row


def key_ledger(session: Session, key_id: str, *, limit: int = 100) -> list[LedgerEntry]:
    return ledger.history(session, key_id, limit=limit)


# --- accounts ----------------------------------------------------------------------------
def set_limits(
    services: Services,
    account_id: str,
    changes: dict[str, int | None],
    *,
    actor: str = audit.CLI,
) -> accounts.Limits:
    """Change an account's quotas or creation limit; returns the limits now in force."""
    with services.db.write() as session:
        before = accounts.set_limits(session, account_id, changes)
        after = accounts.limits_of(accounts.get(session, account_id))
        audit.record(
            session,
            actor=actor,
            action="account.limits",
            target=account_id,
            before=before.as_dict(),
            after=after.as_dict(),
        )
        return after


# --- characters --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CharacterRow:
    character: Character
    key: ApiKey


def character_rows(
    session: Session, *, key_id: str | None = None, limit: int = 200
) -> list[CharacterRow]:
    """Characters not deleted (of every key, or of ``key_id``), newest first, with their key."""
    query = (
        select(Character, ApiKey)
        .join(ApiKey, ApiKey.id == Character.key_id)
        .where(Character.deleted_at.is_(None))
    )
    if key_id:
        query = query.where(Character.key_id == key_id)
    rows = session.execute(
        query.order_by(Character.created_at.desc(), Character.id.desc()).limit(limit)
    ).all()
    return [CharacterRow(c, k) for c, k in rows]


def delete_character(services: Services, character_id: str, *, actor: str = audit.CLI) -> Character:
    """Delete any key's character as its key could: gone for new creates at once, its frames
    removed now (or by the next retention sweep if storage refuses)."""
    with services.db.write() as session:
        marked = "\x00" not in character_id and changed(
            session.execute(
                update(Character)
                .where(Character.id == character_id, Character.deleted_at.is_(None))
                .values(deleted_at=now())
            )
        )
        row = session.get(Character, character_id) if marked else None
        if row is None:
            raise NotFound("No such character")
        audit.record(
            session,
            actor=actor,
            action="character.delete",
            target=row.id,
            before={"key": row.key_id, "name": row.name},
            after={"deletedAt": row.deleted_at},
        )
    character_frames.discard(services, row)
    return row
