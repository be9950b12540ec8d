"""Operator use cases: filtering, cancel, retry as a new charged task, keys and credits."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from reel.db.models import LedgerEntry, Task
from reel.service import admin, keys
from reel.service.context import Services
from reel.service.errors import (
    InsufficientCredits,
    InvalidParameter,
    LoginRequired,
    TaskNotCancelable,
    TaskNotFound,
    TaskNotRetryable,
)
from reel.types import TaskStatus, Tier
from tests.factories import make_key
from tests.service.helpers import finish, submit


def test_find_tasks_filters_by_status_key_engine_and_date(services: Services) -> None:
    k1 = make_key(services, credits=1000, name="alice").id
    k2 = make_key(services, credits=1000, name="bob").id
    old = submit(services, k1, at=1_000_000.0)
    finish(services, old, TaskStatus.COMPLETED, at=1_000_100.0, seconds=1.0, engine="wan")
    failed = submit(services, k2)
    finish(services, failed, TaskStatus.FAILED, at=time.time())
    queued = submit(services, k1, tier=Tier.PRO_HIGH)

    def ids(**kw: object) -> list[str]:
        with services.db.read() as session:
            page = admin.find_tasks(services, session, admin.TaskFilter(**kw))  # type: ignore[arg-type]
        return [r.task.id for r in page.rows]

    assert ids() == [queued, failed, old]
    assert ids(status=TaskStatus.FAILED) == [failed]
    assert ids(key_id=k1) == [queued, old]
    assert ids(engine="wan") == [old]
    assert ids(engine="sandbox") == [queued, failed]  # queued: by its model's engine
    assert ids(since=2_000_000.0) == [queued, failed]
    assert ids(until=2_000_000.0) == [old]
    with services.db.read() as session:
        page = admin.find_tasks(services, session, admin.TaskFilter(), limit=2)
        assert page.total == 3 and page.has_more and page.rows[0].key_name == "alice"
        assert admin.engines(services, session) == ["sandbox", "wan"]


def test_retry_is_a_new_charged_task_linked_to_the_original(services: Services) -> None:
    key = make_key(services, credits=100).id
    original = submit(services, key)  # 4 credits
    finish(services, original, TaskStatus.FAILED, at=time.time())
    retried = admin.retry(services, original)
    assert retried.id != original and retried.status == TaskStatus.QUEUED
    assert retried.extra == {"retryOf": original} and retried.credits == 4
    with services.db.read() as session:
        kinds = session.execute(
            select(LedgerEntry.task_id, LedgerEntry.kind).where(LedgerEntry.task_id.is_not(None))
        ).all()
        assert sorted(kinds) == sorted(
            [(original, "charge"), (original, "refund"), (retried.id, "charge")]
        )
        assert keys.get(session, key).balance == 96
        first = session.get(Task, original)
        assert first is not None and first.status == TaskStatus.FAILED  # never reopened
        detail = admin.task_detail(session, original)
        assert [t.id for t in detail.retries] == [retried.id] and not detail.can_retry
        assert admin.task_detail(session, retried.id).retry_of == original
    with pytest.raises(TaskNotRetryable, match="already retried"):
        admin.retry(services, original)
    # once the retry failed too, the original may be retried again
    finish(services, retried.id, TaskStatus.FAILED, at=time.time())
    assert admin.retry(services, original).extra == {"retryOf": original}


def test_retry_refusals(services: Services) -> None:
    key = make_key(services, credits=4).id
    running = submit(services, key)
    with pytest.raises(TaskNotRetryable, match="only a failed task"):
        admin.retry(services, running)
    finish(services, running, TaskStatus.COMPLETED, at=time.time(), seconds=1.0)
    with pytest.raises(TaskNotRetryable):
        admin.retry(services, running)
    failing = submit(services, make_key(services, credits=4).id)
    finish(services, failing, TaskStatus.FAILED, at=time.time())
    with services.db.write() as session:
        session.execute(
            Task.__table__.update().where(Task.id == failing).values(credits=10)  # type: ignore[attr-defined]
        )
    with pytest.raises(InsufficientCredits):
        admin.retry(services, failing)
    with pytest.raises(TaskNotFound):
        admin.retry(services, "task_missing")
    other = submit(services, key := make_key(services, credits=10).id)
    finish(services, other, TaskStatus.FAILED, at=time.time())
    admin.revoke_key(services, key)
    with pytest.raises(TaskNotRetryable, match="revoked"):
        admin.retry(services, other)


def test_retry_copies_the_stored_start_image(services: Services) -> None:
    key = make_key(services, credits=100).id
    original = submit(services, key)
    services.storage.put_bytes(f"inputs/{original}.png", b"png-bytes")
    with services.db.write() as session:
        task = session.get(Task, original)
        assert task is not None
        task.mode, task.image_key = "imageToVideo", f"inputs/{original}.png"
    finish(services, original, TaskStatus.FAILED, at=time.time())
    retried = admin.retry(services, original)
    assert retried.image_key == f"inputs/{retried.id}.png" and retried.mode == "imageToVideo"
    assert services.storage.exists(retried.image_key)
    services.storage.delete(f"inputs/{original}.png")
    finish(services, retried.id, TaskStatus.FAILED, at=time.time())
    with pytest.raises(Exception, match="no longer stored"):
        admin.retry(services, original)


def test_admin_cancel_any_keys_task(services: Services) -> None:
    key = make_key(services, credits=10).id
    tid = submit(services, key)
    assert admin.cancel(services, tid).status == TaskStatus.CANCELED
    with services.db.read() as session:
        assert keys.get(session, key).balance == 10
    finish(services, submit(services, key), TaskStatus.COMPLETED, at=time.time(), seconds=1)
    done = next(r for r in admin_rows(services) if r.task.status == TaskStatus.COMPLETED)
    with pytest.raises(TaskNotCancelable):
        admin.cancel(services, done.task.id)
    with pytest.raises(TaskNotFound):
        admin.cancel(services, "task_nope")


def admin_rows(services: Services) -> list[admin.TaskRow]:
    with services.db.read() as session:
        return admin.find_tasks(services, session, admin.TaskFilter()).rows


def test_keys_issue_top_up_revoke_and_rows(services: Services) -> None:
    issued = admin.issue_key(services, name="acme", credits=5)
    assert issued.key.startswith("sk-reel-")
    assert admin.top_up(services, issued.id, 7, note="march") == 12
    with pytest.raises(InvalidParameter):
        admin.top_up(services, issued.id, 0)
    with pytest.raises(InvalidParameter):
        admin.top_up(services, issued.id, 1, note="x" * 201)
    submit(services, issued.id)
    with services.db.read() as session:
        row = next(r for r in admin.key_rows(session) if r.key.id == issued.id)
        assert (row.tasks, row.active) == (1, 1) and row.last_task_at is not None
        notes = [(e.kind, e.amount, e.note) for e in admin.key_ledger(session, issued.id)]
    assert notes == [("charge", -4, None), ("grant", 7, "march"), ("grant", 5, "opening balance")]
    admin.revoke_key(services, issued.id)
    with services.db.read() as session, pytest.raises(LoginRequired):
        keys.authenticate(session, issued.key)
    with pytest.raises(InvalidParameter, match="revoked"):
        admin.top_up(services, issued.id, 1)
    with services.db.read() as session:
        assert admin.key_rows(session)[-1].key.id == issued.id  # revoked keys last


def test_retry_keeps_the_request_but_not_how_the_last_run_went(services: Services) -> None:
    from sqlalchemy import update

    key = make_key(services, credits=100).id
    original = submit(services, key)
    with services.db.write() as session:
        session.execute(
            update(Task)
            .where(Task.id == original)
            .values(
                width=1280,
                height=720,
                extra={
                    "openaiModel": "sora-2",
                    "size": "1280x720",
                    "upstream": {"request_id": "r1"},
                    "engine_state": {"job": "j1"},
                },
            )
        )
    finish(services, original, TaskStatus.FAILED, at=time.time())
    retried = admin.retry(services, original)
    assert (retried.width, retried.height) == (1280, 720)
    assert retried.extra == {"openaiModel": "sora-2", "size": "1280x720", "retryOf": original}
