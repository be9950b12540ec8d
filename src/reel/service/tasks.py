"""Task use cases for API key holders: create (price → reserve → insert → enqueue), read, cancel."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from reel.db.models import ApiKey, Task
from reel.media.errors import MediaError
from reel.media.images import fetch_image
from reel.service import ledger, pricing
from reel.service.clock import now
from reel.service.context import Services
from reel.service.errors import (
    ActiveTaskLimit,
    ImageFetchFailed,
    InsufficientCredits,
    TaskNotCancelable,
    TaskNotFound,
)
from reel.types import Aspect, Mode, Stage, TaskStatus, Tier

ACTIVE = (TaskStatus.QUEUED, TaskStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class NewTask:
    """A validated generation request, whichever surface it came from."""

    prompt: str
    mode: Mode
    tier: Tier
    aspect: Aspect
    duration_s: int
    image_urls: tuple[str, ...] = ()
    surface: str = "seed"
    #: Credits to charge; default: the tier × duration price.
    credits: int | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def price(self) -> int:
        if self.credits is not None:
            return self.credits
        return pricing.price(self.tier, self.duration_s)


def new_task_id() -> str:
    return "task_" + secrets.token_hex(12)


def create(services: Services, key: ApiKey, cmd: NewTask) -> Task:
    """Accept a task: charge and insert in one transaction. Nothing is charged on any refusal."""
    cost = cmd.price
    task_id = new_task_id()
    with services.db.read() as session:
        _check_can_start(session, key.id, cost, services.settings.max_active_tasks_per_key)
    image_key = _store_start_image(services, task_id, cmd) if cmd.image_urls else None
    width, height = pricing.frame_size(cmd.tier, cmd.aspect)
    model = services.catalog.tiers[cmd.tier]
    try:
        with services.db.write() as session:
            task = Task(
                id=task_id,
                key_id=key.id,
                status=TaskStatus.QUEUED,
                surface=cmd.surface,
                mode=cmd.mode,
                tier=cmd.tier,
                model=model,
                aspect=cmd.aspect,
                duration_s=cmd.duration_s,
                width=width,
                height=height,
                prompt=cmd.prompt,
                image_key=image_key,
                seed=secrets.randbelow(2**31),
                priority=services.settings.priority_for(cmd.tier),
                credits=cost,
                extra=dict(cmd.extra),
                stage=Stage.QUEUED,
                percent=0.0,
                attempts=0,
                max_attempts=services.settings.max_attempts,
                created_at=now(),
            )
            session.add(task)
            session.flush()
            ledger.charge_task(session, key.id, task_id, cost)  # locks the key's row
            _check_active(
                session, key.id, services.settings.max_active_tasks_per_key, including_new=True
            )
            services.dispatcher.enqueue(session, task)
    except BaseException:
        if image_key is not None:
            services.storage.delete(image_key)
        raise
    return task


def _check_can_start(session: Session, key_id: str, cost: int, max_active: int) -> None:
    balance = session.scalar(select(ApiKey.balance).where(ApiKey.id == key_id)) or 0
    if balance < cost:
        raise InsufficientCredits(requiredCredits=cost)
    _check_active(session, key_id, max_active)


def _check_active(
    session: Session, key_id: str, max_active: int, *, including_new: bool = False
) -> None:
    active = (
        session.scalar(
            select(func.count())
            .select_from(Task)
            .where(Task.key_id == key_id, Task.status.in_(ACTIVE))
        )
        or 0
    )
    if including_new:
        active -= 1
    if active >= max_active:
        raise ActiveTaskLimit(
            f"This API key already has {active} unfinished tasks (limit {max_active})",
            maxActiveTasks=max_active,
        )


def _store_start_image(services: Services, task_id: str, cmd: NewTask) -> str:
    """Fetch the first image URL safely, once; the task uses the re-encoded copy from now on."""
    try:
        image = fetch_image(
            cmd.image_urls[0], services.fetch_policy, max_pixels=services.settings.image_max_pixels
        )
    except MediaError as exc:
        raise ImageFetchFailed(f"imageUrls[0]: {exc.message}", param="imageUrls") from exc
    key = f"inputs/{task_id}.png"
    services.storage.put_bytes(key, image.png)
    return key


def get(session: Session, key: ApiKey, task_id: str) -> Task:
    """The key's task; another key's task is indistinguishable from a missing one."""
    task = session.get(Task, task_id)
    if task is None or task.key_id != key.id:
        raise TaskNotFound()
    return task


def queue_position(session: Session, task: Task) -> int | None:
    """1 for the next task its model's workers will take; ``None`` unless queued."""
    if task.status != TaskStatus.QUEUED:
        return None
    ahead = session.scalar(
        select(func.count())
        .select_from(Task)
        .where(
            Task.status == TaskStatus.QUEUED,
            Task.model == task.model,
            (Task.priority > task.priority)
            | ((Task.priority == task.priority) & (Task.created_at < task.created_at)),
        )
    )
    return (ahead or 0) + 1


def list_for_key(session: Session, key: ApiKey, *, limit: int, after: str | None) -> list[Task]:
    """Newest first; ``after`` is the id of the last task of the previous page."""
    query = select(Task).where(Task.key_id == key.id)
    if after:
        anchor = session.get(Task, after)
        if anchor is None or anchor.key_id != key.id:
            raise TaskNotFound("Unknown cursor")
        query = query.where(
            (Task.created_at < anchor.created_at)
            | ((Task.created_at == anchor.created_at) & (Task.id < anchor.id))
        )
    return list(
        session.scalars(query.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit))
    )


def cancel(services: Services, key: ApiKey, task_id: str) -> Task:
    """Queued: canceled and refunded now. Running: flagged; the worker stops at its next step."""
    with services.db.write() as session:
        task = get(session, key, task_id)
        if task.status == TaskStatus.QUEUED:
            done = session.execute(
                update(Task)
                .where(Task.id == task.id, Task.status == TaskStatus.QUEUED)
                .values(
                    status=TaskStatus.CANCELED,
                    finished_at=now(),
                    error_code="TASK_CANCELED",
                    error_message="Canceled by request",
                    cancel_requested=True,
                )
            ).rowcount
            if done:
                ledger.refund_task(session, task.id, note="canceled")
                services.dispatcher.cancel(session, task)
        elif task.status == TaskStatus.RUNNING:
            flagged = session.execute(
                update(Task)
                .where(Task.id == task.id, Task.status == TaskStatus.RUNNING)
                .values(cancel_requested=True)
            ).rowcount
            if flagged:
                services.dispatcher.cancel(session, task)
        elif task.status != TaskStatus.CANCELED:
            raise TaskNotCancelable()
        session.refresh(task)
        return task
