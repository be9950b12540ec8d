"""Task use cases for API key holders: create (price → reserve → insert → enqueue), read, cancel."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from reel.db.models import Account, ApiKey, Task
from reel.db.session import changed
from reel.media.errors import MediaError
from reel.queue import Dispatcher
from reel.service import accounts, ledger, lifecycle, moderation, pricing, retention, webhooks
from reel.service.clock import now
from reel.service.context import Services
from reel.service.errors import (
    ActiveTaskLimit,
    ImageFetchFailed,
    ImageRequired,
    InsufficientCredits,
    InvalidParameter,
    TaskNotCancelable,
    TaskNotFound,
)
from reel.service.startimages import start_images
from reel.storage import StorageError
from reel.storage.naming import (
    MAX_REFERENCES,
    input_image_key,
    input_reference_key,
    input_video_key,
)
from reel.types import FINAL_STATUSES, Aspect, Mode, Stage, TaskStatus, Tier

ACTIVE = (TaskStatus.QUEUED, TaskStatus.RUNNING)
#: ``Task.extra`` key linking an operator's retry to the failed task it repeats.
RETRY_OF = "retryOf"


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
    #: An already-stored start image to copy instead of fetching ``image_urls`` (a retry).
    source_image_key: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    #: The models-file model to run; default: the one serving ``tier``.
    model: str | None = None
    #: (width, height) to render; default: the tier's size in ``aspect``.
    size: tuple[int, int] | None = None
    #: An uploaded start image (any format Pillow reads); wins over ``image_urls``.
    image_data: bytes | None = None
    #: Which request field the start image came from, for error messages.
    image_param: str = "imageUrls"
    #: An operator's retry: ``<failed task id>:<n>``, unique in the database (one n-th retry).
    retry_key: str | None = None
    #: A validated source video (an extension's or an edit's), stored with the task.
    source_video: Path | None = None
    #: Stored reference frames (characters') copied to the task, in prompt order.
    reference_keys: tuple[str, ...] = ()
    #: A task whose stored source video and reference frames to copy (a retry repeats them).
    inputs_of: str | None = None

    @property
    def price(self) -> int:
        if self.credits is not None:
            return self.credits
        return pricing.price(self.tier, self.duration_s)


def repeat(
    old: Task,
    *,
    drop: frozenset[str] = frozenset(),
    extra: Mapping[str, object] | None = None,
    **changes: Any,
) -> NewTask:
    """A request that repeats ``old``'s (model, size, tier, duration, price, surface, start
    image and request fields of ``extra``), with ``changes``: the one way a task is rebuilt
    from another (a retry, a remix). ``drop`` names ``extra`` fields not to carry over."""
    cmd = NewTask(
        prompt=old.prompt,
        mode=Mode(old.mode),
        tier=Tier(old.tier),
        aspect=Aspect(old.aspect),
        duration_s=old.duration_s,
        surface=old.surface,
        credits=old.credits,
        source_image_key=old.image_key,
        extra={**lifecycle.request_extra(old, drop=drop), **(extra or {})},
        model=old.model,
        size=(old.width, old.height),
        inputs_of=old.id,
    )
    return replace(cmd, **changes)


def new_task_id() -> str:
    return "task_" + secrets.token_hex(12)


OnInsert = Callable[[Session, Task], None]
"""Runs inside the transaction that inserts and charges a task (idempotency records)."""


def create(
    services: Services, key: ApiKey, cmd: NewTask, *, on_insert: OnInsert | None = None
) -> Task:
    """Accept a task: charge and insert in one transaction. Nothing is charged on any refusal."""
    cost = cmd.price
    task_id = new_task_id()
    with services.db.read() as session:
        _check_can_start(session, key, cost, services.settings.max_active_tasks_per_key)
    extra = dict(cmd.extra)
    verdict = moderation.screen_prompt(services.settings, cmd.prompt)  # may refuse
    if verdict is not None:
        extra[moderation.MODERATION] = {"prompt": verdict.record()}
    image_key = None
    if cmd.image_urls or cmd.image_data is not None:
        image_key = _store_start_image(services, key.id, task_id, cmd)
    elif cmd.source_image_key:
        image_key = _copy_start_image(services, task_id, cmd.source_image_key)
    width, height = cmd.size or pricing.frame_size(cmd.tier, cmd.aspect)
    model = cmd.model or services.catalog.tiers[cmd.tier]
    inputs = [image_key] if image_key is not None else []
    try:
        _store_inputs(services, task_id, cmd, inputs)
        with services.db.write() as session:
            task = Task(
                id=task_id,
                key_id=key.id,
                account_id=key.account_id,
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
                retry_key=cmd.retry_key,
                priority=services.settings.priority_for(cmd.tier),
                credits=cost,
                extra=extra,
                stage=Stage.QUEUED,
                percent=0.0,
                attempts=0,
                max_attempts=services.settings.max_attempts,
                created_at=now(),
            )
            session.add(task)
            session.flush()
            # locks the account's row: quota checks of concurrent creates take turns here
            ledger.charge_task(session, key.id, task_id, cost, account_id=key.account_id)
            accounts.check_quota(session, key.account_id)
            _check_active(
                session, key.id, services.settings.max_active_tasks_per_key, including_new=True
            )
            services.dispatcher.enqueue(session, task)
            if on_insert is not None:
                on_insert(session, task)
    except BaseException:
        for stored in inputs:
            services.storage.delete(stored)
        raise
    return task


def _store_inputs(services: Services, task_id: str, cmd: NewTask, keys: list[str]) -> None:
    """The source video and reference frames a task works from, stored under its own keys
    (each appended to ``keys`` before it is written, so a refusal removes it)."""
    if cmd.source_video is not None:
        keys.append(input_video_key(task_id))
        services.storage.put_file(keys[-1], cmd.source_video)
    copies = list(enumerate(cmd.reference_keys))
    if cmd.inputs_of is not None:
        if cmd.source_video is None and services.storage.exists(input_video_key(cmd.inputs_of)):
            copies.append((-1, input_video_key(cmd.inputs_of)))
        if not cmd.reference_keys:
            for n in range(MAX_REFERENCES):
                if services.storage.exists(input_reference_key(cmd.inputs_of, n)):
                    copies.append((n, input_reference_key(cmd.inputs_of, n)))
    for n, stored in copies:
        keys.append(input_video_key(task_id) if n < 0 else input_reference_key(task_id, n))
        with tempfile.TemporaryDirectory(prefix="reel-input-") as tmp:
            try:
                services.storage.get_to(stored, Path(tmp) / "input")
            except StorageError:
                if services.storage.exists(stored):
                    raise  # storage is failing: not the client's fault
                raise InvalidParameter(  # e.g. a character deleted while this request ran
                    "An input this request names is no longer stored (a character deleted "
                    "meanwhile?); nothing was charged",
                    param="prompt",
                ) from None
            services.storage.put_file(keys[-1], Path(tmp) / "input")


def _check_can_start(session: Session, key: ApiKey, cost: int, max_active: int) -> None:
    balance = session.scalar(select(Account.balance).where(Account.id == key.account_id)) or 0
    if balance < cost:
        raise InsufficientCredits(requiredCredits=cost)
    accounts.check_quota(session, key.account_id, adding_credits=cost, adding_videos=1)
    _check_active(session, key.id, max_active)


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


def _store_start_image(services: Services, key_id: str, task_id: str, cmd: NewTask) -> str:
    """Fetch the first image URL safely, once (or decode the upload), in the start-image pools
    and within the key's limits; the task uses the re-encoded copy, no larger than its video
    needs, from now on."""
    max_pixels = services.settings.image_max_pixels
    fit = cmd.size or pricing.frame_size(cmd.tier, cmd.aspect)
    images = start_images(services.settings)
    try:
        if cmd.image_data is not None:
            image = images.from_upload(key_id, cmd.image_data, max_pixels=max_pixels, fit=fit)
        else:
            url = cmd.image_urls[0]
            image = images.from_url(
                key_id, url, services.fetch_policy, max_pixels=max_pixels, fit=fit
            )
    except MediaError as exc:
        if cmd.image_data is not None:
            raise InvalidParameter(
                f"{cmd.image_param}: {exc.message}", param=cmd.image_param
            ) from exc
        label = "imageUrls[0]" if cmd.image_param == "imageUrls" else cmd.image_param
        raise ImageFetchFailed(f"{label}: {exc.message}", param=cmd.image_param) from exc
    key = input_image_key(task_id)
    services.storage.put_bytes(key, image.png)
    return key


def _copy_start_image(services: Services, task_id: str, source_key: str) -> str:
    key = input_image_key(task_id)
    with tempfile.TemporaryDirectory(prefix="reel-image-") as tmp:
        local = Path(tmp) / "start.png"
        try:
            services.storage.get_to(source_key, local)
            services.storage.put_file(key, local)
        except StorageError as exc:
            raise ImageRequired("The start image of the original task is no longer stored") from exc
    return key


def get(session: Session, key: ApiKey, task_id: str) -> Task:
    """A task of the key's account; another account's is indistinguishable from a missing one."""
    if "\x00" in task_id:  # no id holds one, and PostgreSQL refuses it in a query
        raise TaskNotFound()
    task = session.get(Task, task_id)
    if task is None or task.account_id != key.account_id or task.deleted_at is not None:
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


def list_for_key(
    session: Session,
    key: ApiKey,
    *,
    limit: int,
    after: str | None,
    order: str = "desc",
    surface: str | None = None,
) -> list[Task]:
    """Newest first (``order="asc"``: oldest first); ``after`` is the id of the last task of
    the previous page. ``surface`` keeps only tasks created through that API surface."""
    query = select(Task).where(Task.account_id == key.account_id, Task.deleted_at.is_(None))
    if surface is not None:
        query = query.where(Task.surface == surface)
    ascending = order == "asc"
    if after:
        anchor = None if "\x00" in after else session.get(Task, after)
        if anchor is None or anchor.account_id != key.account_id:
            raise TaskNotFound("Unknown cursor")
        if ascending:
            query = query.where(
                (Task.created_at > anchor.created_at)
                | ((Task.created_at == anchor.created_at) & (Task.id > anchor.id))
            )
        else:
            query = query.where(
                (Task.created_at < anchor.created_at)
                | ((Task.created_at == anchor.created_at) & (Task.id < anchor.id))
            )
    ordering = (
        (Task.created_at.asc(), Task.id.asc())
        if ascending
        else (Task.created_at.desc(), Task.id.desc())
    )
    return list(session.scalars(query.order_by(*ordering).limit(limit)))


def cancel(services: Services, key: ApiKey, task_id: str) -> Task:
    """Queued: canceled and refunded now. Running: flagged; the worker stops at its next step."""
    with services.db.write() as session:
        task = get(session, key, task_id)
        if task.status in FINAL_STATUSES and task.status != TaskStatus.CANCELED:
            raise TaskNotCancelable()
        _cancel(session, task, services.dispatcher)
        session.refresh(task)
        return task


def _cancel(session: Session, task: Task, dispatcher: Dispatcher) -> None:
    """Queued: canceled, refunded and its job withdrawn now. Running: flagged (and the queue
    asked to abort it); the worker stops at its next step and refunds then."""
    if task.status == TaskStatus.QUEUED:
        done = changed(
            session.execute(
                update(Task)
                .where(Task.id == task.id, Task.status == TaskStatus.QUEUED)
                .values(
                    status=TaskStatus.CANCELED,
                    finished_at=now(),
                    error_code="TASK_CANCELED",
                    error_message="Canceled by request",
                    cancel_requested=True,
                )
            )
        )
        if done:
            ledger.refund_task(session, task.id, note="canceled")
            webhooks.record_event(session, task.id, TaskStatus.CANCELED)
            dispatcher.cancel(session, task)
    elif task.status == TaskStatus.RUNNING:
        flagged = changed(
            session.execute(
                update(Task)
                .where(Task.id == task.id, Task.status == TaskStatus.RUNNING)
                .values(cancel_requested=True)
            )
        )
        if flagged:
            dispatcher.cancel(session, task)


def delete(services: Services, key: ApiKey, task_id: str) -> Task:
    """Hide the task from both surfaces and remove its files; an unfinished one is canceled
    first (a running one's files, if it still finishes, go with the next retention sweep)."""
    with services.db.write() as session:
        task = get(session, key, task_id)
        _cancel(session, task, services.dispatcher)
        session.execute(update(Task).where(Task.id == task.id).values(deleted_at=now()))
        session.refresh(task)
    if task.status in FINAL_STATUSES:
        retention.purge(services, task)
    return task
