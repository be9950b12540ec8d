"""Engine state and metadata on the task row: fenced by the lease, hidden in ``extra``."""

from __future__ import annotations

from sqlalchemy import update

from reel.db.models import Task
from reel.service import lifecycle, tasks
from reel.service.context import Services
from reel.types import Aspect, Mode, Tier
from tests.factories import claim_next, make_key


def claimed(services: Services) -> tuple[str, lifecycle.Lease]:
    issued = make_key(services, credits=100)
    with services.db.read() as session:
        key = session.get(tasks.ApiKey, issued.id)
    assert key is not None
    cmd = tasks.NewTask(
        prompt="x",
        mode=Mode.TEXT_TO_VIDEO,
        tier=Tier.SORA2,
        aspect=Aspect.PORTRAIT,
        duration_s=10,
        extra={"client_ref": "abc"},
    )
    task_id = tasks.create(services, key, cmd).id
    task = claim_next(services, "w")
    assert task is not None
    return task_id, lifecycle.lease_of(task)


def extra(services: Services, task_id: str) -> dict[str, object]:
    with services.db.read() as session:
        task = session.get(Task, task_id)
        assert task is not None
        return dict(task.extra)


def test_state_is_saved_only_under_the_lease_and_dropped_on_completion(services: Services) -> None:
    task_id, lease = claimed(services)
    with services.db.write() as session:
        assert lifecycle.save_engine_state(session, lease, {"job": {"id": "j1"}})
    assert extra(services, task_id) == {"client_ref": "abc", "engine_state": {"job": {"id": "j1"}}}
    with services.db.read() as session:
        task = session.get(Task, task_id)
        assert task is not None and lifecycle.engine_state(task) == {"job": {"id": "j1"}}

    stale = lifecycle.Lease(task_id, "someone-else", lease.attempt)
    with services.db.write() as session:
        assert not lifecycle.save_engine_state(session, stale, {"job": {"id": "j2"}})

    with services.db.write() as session:
        assert lifecycle.complete(
            session,
            lease,
            video_key="v.mp4",
            engine="fal",
            generation_seconds=1.0,
            metadata={"upstream": {"request_id": "j1"}},
        )
    assert extra(services, task_id) == {"client_ref": "abc", "upstream": {"request_id": "j1"}}


def test_completion_without_metadata_leaves_extra_alone(services: Services) -> None:
    task_id, lease = claimed(services)
    with services.db.write() as session:
        session.execute(update(Task).where(Task.id == task_id).values(extra={"k": 1}))
        assert lifecycle.complete(
            session, lease, video_key="v", engine="sandbox", generation_seconds=1
        )
    assert extra(services, task_id) == {"k": 1}
