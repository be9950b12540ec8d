"""Retention: every file a task wrote goes, including those of attempts that never settled."""

from __future__ import annotations

import time

from sqlalchemy import update

from reel.db.models import Task
from reel.service import retention
from reel.service.context import Services
from reel.storage.naming import preview_keys, task_keys, video_key
from reel.types import TaskStatus
from tests.factories import make_key
from tests.service.helpers import submit


def test_sweep_removes_files_of_unsettled_attempts_of_failed_tasks(services: Services) -> None:
    key = make_key(services, credits=100).id
    task_id = submit(services, key)
    orphan = video_key(task_id, 1)  # attempt 1 stored its video, then its worker died
    for k in (orphan, *preview_keys(orphan)):
        services.storage.put_bytes(k, b"x")
    old = time.time() - services.settings.video_retention - 60
    with services.db.write() as session:
        session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(status=TaskStatus.FAILED, attempts=2, finished_at=old)
        )
    retention.sweep(services)
    assert not any(services.storage.exists(k) for k in task_keys(task_id, 2))
    with services.db.read() as session:
        assert session.get(Task, task_id).purged_at is not None  # type: ignore[union-attr]


def test_recent_tasks_keep_their_files(services: Services) -> None:
    key = make_key(services, credits=100).id
    task_id = submit(services, key)
    services.storage.put_bytes(video_key(task_id, 1), b"x")
    with services.db.write() as session:
        session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(status=TaskStatus.FAILED, attempts=1, finished_at=time.time())
        )
    retention.sweep(services)
    assert services.storage.exists(video_key(task_id, 1))
