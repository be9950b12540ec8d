"""The procrastinate queue against the pinned release's real schema on PostgreSQL.

These pin down what Reel relies on in procrastinate's internals: deferring on the caller's
connection and transaction, the job table's shape (``args->>'task_id'``, statuses), cancel and
abort, priorities, and the documented stalled-job retry.
"""

from __future__ import annotations

import importlib.metadata
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text, update

from reel.config import Settings
from reel.db.models import LedgerEntry, Task
from reel.queue.procrastinate import (
    MAINTENANCE_QUEUE,
    PINNED_VERSION,
    QueueUnavailable,
    make_app,
)
from reel.service import tasks
from reel.service.clock import now
from reel.service.context import Services
from reel.types import Aspect, Mode, TaskStatus, Tier
from reel.worker.jobs import build_app
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.conftest import with_settings
from tests.factories import make_key

pytestmark = pytest.mark.services


@pytest.fixture
def backend() -> str:
    return "scaled"


def cmd(tier: Tier = Tier.SORA2) -> tasks.NewTask:
    return tasks.NewTask(
        prompt="a fox", mode=Mode.TEXT_TO_VIDEO, tier=tier, aspect=Aspect.PORTRAIT, duration_s=10
    )


def create(services: Services, tier: Tier = Tier.SORA2, credits: int = 1000) -> Task:
    issued = make_key(services, credits=credits)
    with services.db.read() as session:
        key = session.get(tasks.ApiKey, issued.id)
    assert key is not None
    return tasks.create(services, key, cmd(tier))


def jobs(services: Services) -> list[dict[str, object]]:
    with services.db.read() as session:
        rows = session.execute(
            text(
                "SELECT id, queue_name, task_name, priority, status, args, abort_requested"
                " FROM procrastinate_jobs WHERE task_name = 'reel.run_task' ORDER BY id"
            )
        ).mappings()
        return [dict(r) for r in rows]


def task_row(services: Services, task_id: str) -> Task:
    with services.db.read() as session:
        task = session.get(Task, task_id)
        assert task is not None
        return task


def test_pinned_release_is_installed() -> None:
    assert importlib.metadata.version("procrastinate") == PINNED_VERSION


def test_refuses_another_procrastinate_release(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda _name: "9.9.9")
    with pytest.raises(QueueUnavailable, match=r"3\.10\.0"):
        make_app(settings)


def test_create_defers_one_job_in_the_same_transaction(services: Services) -> None:
    task = create(services)
    [job] = jobs(services)
    assert job["queue_name"] == task.model and job["status"] == "todo"
    assert job["args"] == {"task_id": task.id} and job["priority"] == task.priority


def test_rolled_back_create_leaves_no_job(services: Services) -> None:
    issued = make_key(services, credits=10)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), services.db.write() as session:
        task = Task(
            id="task_rollback",
            key_id=issued.id,
            status=TaskStatus.QUEUED,
            mode=Mode.TEXT_TO_VIDEO,
            tier=Tier.SORA2,
            model="sandbox",
            aspect=Aspect.PORTRAIT,
            duration_s=10,
            width=64,
            height=64,
            prompt="x",
            credits=4,
            created_at=now(),
        )
        session.add(task)
        session.flush()
        services.dispatcher.enqueue(session, task)
        assert session.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar() == 1
        raise Boom
    assert jobs(services) == []
    with services.db.read() as session:
        assert session.get(Task, "task_rollback") is None


def test_refused_create_defers_nothing(services: Services) -> None:
    with pytest.raises(tasks.InsufficientCredits):
        create(services, credits=3)
    assert jobs(services) == []


def test_duplicate_delivery_runs_the_task_once(services: Services) -> None:
    task = create(services)
    with services.db.write() as session:  # a second message for the same task
        services.dispatcher.enqueue(session, session.get(Task, task.id))  # type: ignore[arg-type]
    runner = Runner(services)
    assert run_once(runner) is True
    assert run_once(runner) is False  # the second job finds the task completed
    done = task_row(services, task.id)
    assert done.status == TaskStatus.COMPLETED and done.attempts == 1
    assert jobs(services) == []  # delivered jobs are deleted: the task row keeps the history


def test_jobs_go_only_to_workers_of_their_model(services: Services, settings: Settings) -> None:
    task = create(services)
    [job] = jobs(services)
    assert job["queue_name"] == "sandbox"
    with services.db.write() as session:  # route it to a model nobody here serves
        session.execute(text("UPDATE procrastinate_jobs SET queue_name = 'elsewhere'"))
    assert run_once(Runner(services)) is False
    assert task_row(services, task.id).status == TaskStatus.QUEUED


def test_priorities_per_tier_are_honoured(services: Services) -> None:
    ranked = with_settings(services, tier_priorities=("sora2-pro-high=5", "sora2-pro-standard=2"))
    low = create(ranked, Tier.SORA2)
    high = create(ranked, Tier.PRO_HIGH)
    mid = create(ranked, Tier.PRO_STANDARD)
    runner = Runner(ranked)
    for _ in range(3):
        assert run_once(runner)
    started = {t.id: task_row(ranked, t.id).started_at or 0 for t in (low, mid, high)}
    assert started[high.id] < started[mid.id] < started[low.id]


def test_cancel_of_queued_task_withdraws_its_job(services: Services) -> None:
    task = create(services)
    with services.db.read() as session:
        key = session.get(tasks.ApiKey, task.key_id)
    assert key is not None
    tasks.cancel(services, key, task.id)
    assert jobs(services) == []
    assert run_once(Runner(services)) is False


def test_cancel_of_running_task_requests_abort(services: Services) -> None:
    slow = with_settings(services, sandbox_delay=4.0)
    task = create(slow)
    runner = Runner(slow)
    thread = threading.Thread(target=run_once, args=(runner,))
    thread.start()
    deadline = time.monotonic() + 15
    while task_row(slow, task.id).status != TaskStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
    with slow.db.read() as session:
        key = session.get(tasks.ApiKey, task.key_id)
    assert key is not None
    tasks.cancel(slow, key, task.id)
    [job] = jobs(slow)
    assert job["status"] == "doing" and job["abort_requested"] is True
    thread.join(20)
    assert not thread.is_alive()
    final = task_row(slow, task.id)
    assert final.status == TaskStatus.CANCELED and final.video_key is None
    with slow.db.read() as session:
        kinds = session.scalars(select(LedgerEntry.kind).where(LedgerEntry.task_id == task.id))
        assert sorted(kinds) == ["charge", "refund"]


@pytest.fixture
def stalled_job(services: Services) -> Iterator[tuple[Task, int]]:
    """A task whose job a worker fetched and then died with (no heartbeat for a minute)."""
    task = create(services)
    with services.db.write() as session:
        worker_id = session.execute(
            text(
                "INSERT INTO procrastinate_workers (last_heartbeat)"
                " VALUES (now() - interval '60 seconds') RETURNING id"
            )
        ).scalar_one()
        session.execute(
            text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w"),
            {"w": worker_id},
        )
    yield task, worker_id


def test_periodic_stalled_job_retry(services: Services, stalled_job: tuple[Task, int]) -> None:
    task, _ = stalled_job
    assert run_once(Runner(services)) is False  # nothing to fetch: the job is "doing"
    app = build_app(services.settings, maintenance=True)
    assert any(
        p.task.name == "reel.retry_stalled_jobs"
        for p in app.periodic_registry.periodic_tasks.values()
    )
    with app.open():  # what the periodic deferrer does every REEL_REAPER_SECONDS
        app.configure_task("reel.retry_stalled_jobs").defer(timestamp=0)
    app.run_worker(queues=[MAINTENANCE_QUEUE], wait=False, install_signal_handlers=False)
    [job] = jobs(services)
    assert job["status"] == "todo"
    assert run_once(Runner(services)) is True
    assert task_row(services, task.id).status == TaskStatus.COMPLETED


def test_recover_announces_queued_tasks_without_a_job(services: Services) -> None:
    task = create(services)
    with services.db.write() as session:
        session.execute(text("DELETE FROM procrastinate_jobs"))
    assert run_once(Runner(services)) is False  # the message was lost
    with services.db.write() as session:
        assert services.dispatcher.recover(session) == 1
        assert services.dispatcher.recover(session) == 0  # its job is waiting now
    assert run_once(Runner(services)) is True
    assert task_row(services, task.id).status == TaskStatus.COMPLETED


def test_reaped_task_is_announced_again(services: Services) -> None:
    from reel.worker.reaper import Reaper

    task = create(services)
    with services.db.write() as session:  # a worker claimed it, then its machine vanished
        session.execute(text("DELETE FROM procrastinate_jobs"))
        session.execute(
            update(Task)
            .where(Task.id == task.id)
            .values(status=TaskStatus.RUNNING, worker_id="gone", attempts=1, lease_until=0.0)
        )
    reaped = Reaper(services).run_once()
    assert reaped.requeued == [task.id]
    assert [j["status"] for j in jobs(services)] == ["todo"]
    assert run_once(Runner(services)) is True
    done = task_row(services, task.id)
    assert done.status == TaskStatus.COMPLETED and done.attempts == 2


def test_recover_leaves_jobs_of_live_workers_and_replaces_those_of_dead_ones(
    services: Services, stalled_job: tuple[Task, int]
) -> None:
    _, worker_id = stalled_job
    with services.db.write() as session:  # the fetching worker is alive: its claim is coming
        session.execute(
            text("UPDATE procrastinate_workers SET last_heartbeat = now() WHERE id = :w"),
            {"w": worker_id},
        )
        assert services.dispatcher.recover(session) == 0
    with services.db.write() as session:  # it died between fetching the job and claiming
        session.execute(
            text(
                "UPDATE procrastinate_workers"
                " SET last_heartbeat = now() - interval '1 minute' WHERE id = :w"
            ),
            {"w": worker_id},
        )
        assert services.dispatcher.recover(session) == 1
    assert run_once(Runner(services)) is True
