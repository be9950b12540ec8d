"""How long a video's files live, and the sweep that removes them (and old idempotency rows).

A completed video expires ``video_retention`` seconds after it completed, whether or not its key
was revoked since (it is its account's). The sweep deletes the files of expired and deleted
tasks and marks them ``purged_at``; the task row stays (the ledger refers to it). Their signed
URLs then answer 404, and ``/v1/videos/{id}/content`` 410. The same sweep removes the frames of
deleted characters whose files are still stored, and the characters of keys revoked more than
``video_retention`` ago (:func:`reel.service.character_frames.sweep`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, select, update

from reel.config import Settings
from reel.db.models import IdempotencyRecord, Task
from reel.db.session import changed
from reel.service import character_frames
from reel.service.clock import now
from reel.service.context import Services
from reel.storage.naming import preview_keys, task_keys
from reel.types import FINAL_STATUSES, TaskStatus

log = logging.getLogger("reel.retention")

_BATCH = 200


def expires_at(task: Task, settings: Settings) -> float | None:
    """When a completed task's files go; ``None`` while unfinished or when it made none."""
    if task.status != TaskStatus.COMPLETED or task.finished_at is None:
        return None
    return task.finished_at + settings.video_retention


@dataclass(frozen=True, slots=True)
class TaskMedia:
    """A completed task's stored files (the video and its previews) and when they expire."""

    video: str
    thumbnail: str
    spritesheet: str
    expires_at: float

    def key(self, variant: Literal["video", "thumbnail", "spritesheet"]) -> str:
        return {"video": self.video, "thumbnail": self.thumbnail, "spritesheet": self.spritesheet}[
            variant
        ]


def media_of(task: Task, settings: Settings) -> TaskMedia | None:
    """The one answer to "which files does this task deliver, until when": ``None`` unless the
    task completed with a video. Whether the files are still there is :func:`is_expired`."""
    expiry = expires_at(task, settings)
    if expiry is None or not task.video_key:
        return None
    thumbnail, spritesheet = preview_keys(task.video_key)
    return TaskMedia(task.video_key, thumbnail, spritesheet, expiry)


def is_expired(task: Task, settings: Settings, *, at: float | None = None) -> bool:
    if task.purged_at is not None:
        return True
    expiry = expires_at(task, settings)
    return expiry is not None and expiry <= (now() if at is None else at)


def purge(services: Services, task: Task) -> None:
    """Delete a finished task's stored files, then mark it purged."""
    keys = set(task_keys(task.id, task.attempts))
    if task.video_key:
        keys |= {task.video_key, *preview_keys(task.video_key)}
    for key in sorted(keys):
        services.storage.delete(key)
    with services.db.write() as session:
        session.execute(
            update(Task).where(Task.id == task.id, Task.purged_at.is_(None)).values(purged_at=now())
        )


@dataclass(frozen=True, slots=True)
class Swept:
    expired: list[str]
    deleted: list[str]
    idempotency_records: int
    #: Characters whose frames this pass removed.
    characters: list[str]


def sweep(services: Services) -> Swept:
    """One pass: purge expired and deleted tasks' files and deleted or orphaned characters'
    frames; drop expired idempotency records."""
    t = now()
    cutoff = t - services.settings.video_retention
    with services.db.read() as session:
        expired = list(
            session.scalars(
                select(Task)
                .where(
                    # failed and canceled tasks too: an attempt may have stored files first
                    Task.status.in_(list(FINAL_STATUSES)),
                    Task.finished_at < cutoff,
                    Task.purged_at.is_(None),
                )
                .limit(_BATCH)
            )
        )
        deleted = list(
            session.scalars(
                select(Task)
                .where(
                    Task.deleted_at.is_not(None),
                    Task.purged_at.is_(None),
                    Task.status.in_(list(FINAL_STATUSES)),
                )
                .limit(_BATCH)
            )
        )
    for task in {t.id: t for t in expired + deleted}.values():
        purge(services, task)
    with services.db.write() as session:
        dropped = changed(
            session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < t))
        )
    characters = character_frames.sweep(services)
    swept = Swept([x.id for x in expired], [x.id for x in deleted], dropped or 0, characters)
    if characters:
        log.info("retention: removed the frames of %d character(s)", len(characters))
    if swept.expired or swept.deleted:
        log.info(
            "retention: removed files of %d expired and %d deleted task(s)",
            len(swept.expired),
            len(swept.deleted),
        )
    return swept
