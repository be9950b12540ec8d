"""Events are written with the task's final transition, by every path that finishes a task."""

from __future__ import annotations

from sqlalchemy import select, update

from reel.db.models import Task, WebhookDelivery
from reel.service import keys, lifecycle, tasks, webhooks
from reel.service.clock import now
from reel.service.context import Services
from reel.types import Aspect, Mode, Tier
from tests.factories import claim_next, make_key

T2V = tasks.NewTask("A fox", Mode.TEXT_TO_VIDEO, Tier.SORA2, Aspect.PORTRAIT, 10)


def events(services: Services) -> list[tuple[str, str]]:
    with services.db.read() as session:
        rows = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at))
        return [(r.task_id, r.event) for r in rows]


def claimed(services: Services) -> tuple[Task, lifecycle.Lease]:
    task = claim_next(services, "w1", lease=60)
    assert task is not None
    return task, lifecycle.lease_of(task)


def test_reaper_lease_loss_and_queue_expiry_emit_failed(services: Services) -> None:
    issued = make_key(services, credits=100)
    with services.db.write() as session:
        webhooks.set_url(session, issued.id, "https://hooks.example.com/r")
        key = keys.get(session, issued.id)

    first = tasks.create(services, key, T2V)
    task, lease = claimed(services)
    assert task.id == first.id
    with services.db.write() as session:  # the worker died with its last attempt
        session.execute(
            update(Task)
            .where(Task.id == task.id)
            .values(lease_until=now() - 1, max_attempts=task.attempts)
        )
        reaped = lifecycle.reap(session, max_queue_wait=3600)
    assert reaped.failed == [first.id]

    stale = tasks.create(services, key, T2V)
    with services.db.write() as session:
        session.execute(update(Task).where(Task.id == stale.id).values(created_at=now() - 7200))
        assert lifecycle.reap(session, max_queue_wait=3600).expired == [stale.id]

    # A worker whose lease was lost cannot complete, so it emits nothing.
    with services.db.write() as session:
        assert not lifecycle.complete(
            session, lease, video_key="videos/x.mp4", engine="sandbox", generation_seconds=1
        )
    assert events(services) == [(first.id, "video.failed"), (stale.id, "video.failed")]


def test_a_rolled_back_transition_leaves_no_event(services: Services) -> None:
    issued = make_key(services, credits=100)
    with services.db.write() as session:
        webhooks.set_url(session, issued.id, "https://hooks.example.com/r")
        key = keys.get(session, issued.id)
    tasks.create(services, key, T2V)
    _, lease = claimed(services)
    try:
        with services.db.write() as session:
            assert lifecycle.cancel_running(session, lease)
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass
    assert events(services) == []
    with services.db.write() as session:
        assert lifecycle.cancel_running(session, lease)
    assert [e for _, e in events(services)] == ["video.canceled"]
