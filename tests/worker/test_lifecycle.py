"""Task lifecycle in process: claim, complete, fail+refund, cancel, drain, lease loss, reaper."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, select, update

from reel.db.models import LedgerEntry, Task
from reel.engines.base import Interrupted
from reel.queue import claim_task
from reel.service import lifecycle, tasks
from reel.service.context import Services
from reel.types import Aspect, Mode, Stage, TaskStatus, Tier
from reel.worker.process import run_once
from reel.worker.progress import ProgressReporter
from reel.worker.runner import Runner
from tests.conftest import with_settings
from tests.factories import claim_next, make_key

CMD = tasks.NewTask(
    prompt="a fox", mode=Mode.TEXT_TO_VIDEO, tier=Tier.SORA2, aspect=Aspect.PORTRAIT, duration_s=10
)


def submit(services: Services, credits: int = 100) -> tuple[str, str]:
    issued = make_key(services, credits=credits)
    with services.db.read() as session:
        key = session.get(tasks.ApiKey, issued.id)
    assert key is not None
    return issued.id, tasks.create(services, key, CMD).id


def row(services: Services, task_id: str) -> Task:
    with services.db.read() as session:
        task = session.get(Task, task_id)
        assert task is not None
        return task


def ledger_kinds(services: Services, task_id: str) -> list[str]:
    with services.db.read() as session:
        return sorted(
            session.scalars(select(LedgerEntry.kind).where(LedgerEntry.task_id == task_id))
        )


def claim(services: Services, worker_id: str = "w1") -> Task | None:
    return claim_next(services, worker_id)


def test_runner_completes_and_stores_previews(services: Services) -> None:
    _, tid = submit(services)
    assert run_once(Runner(services))
    task = row(services, tid)
    assert task.status == TaskStatus.COMPLETED and task.attempts == 1
    assert task.video_key and services.storage.exists(task.video_key)
    stem = task.video_key.rsplit(".", 1)[0]
    assert services.storage.exists(f"{stem}.thumb.webp")
    assert services.storage.exists(f"{stem}.sprite.jpg")
    assert ledger_kinds(services, tid) == ["charge"]
    assert not run_once(Runner(services))  # nothing left


def test_engine_failure_refunds_exactly_once(services: Services) -> None:
    key_id, tid = submit(services, credits=4)
    run_once(Runner(with_settings(services, sandbox_fail_rate=1.0)))
    task = row(services, tid)
    assert task.status == TaskStatus.FAILED and task.error_code == "GENERATION_FAILED"
    assert ledger_kinds(services, tid) == ["charge", "refund"]
    with services.db.write() as session:  # a second refund attempt is a no-op
        assert tasks.ledger.refund_task(session, tid) is None
        assert session.get(tasks.ApiKey, key_id).balance == 4  # type: ignore[union-attr]


def test_claim_is_exclusive(services: Services) -> None:
    submit(services)
    first, second = claim(services, "a"), claim(services, "b")
    assert first is not None and second is None


def test_a_claim_is_one_statement_that_stamps_the_first_start(services: Services) -> None:
    """The claim moves the row, stamps ``started_at`` and returns the row in one UPDATE; a
    later attempt keeps the first start."""
    _, tid = submit(services)
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not statement.startswith("BEGIN"):  # SQLite writers BEGIN IMMEDIATE
            sent.append(statement)

    started = []
    first = time.time()  # before the first claim: every attempt keeps that start
    for worker_id in ("a", "b"):
        event.listen(services.db.engine, "before_cursor_execute", record)
        before = time.time()
        try:
            with services.db.write() as session:
                task = claim_task(
                    session, tid, worker_id=worker_id, models=["sandbox"], lease_until=before + 5
                )
        finally:
            event.remove(services.db.engine, "before_cursor_execute", record)
        assert len(sent) == 1 and sent.pop().startswith("UPDATE tasks")
        assert task is not None and task.status == TaskStatus.RUNNING
        assert task.worker_id == worker_id and task.stage == Stage.LOADING
        assert task.started_at is not None and task.started_at >= first - 0.01
        started.append((task.started_at, task.attempts))
        with services.db.write() as session:  # its worker vanished: requeued by the reaper
            session.execute(update(Task).where(Task.id == tid).values(lease_until=0))
            assert lifecycle.reap(session, max_queue_wait=3600).requeued == [tid]
    assert started[1] == (started[0][0], 2)
    assert row(services, tid).started_at == started[0][0]


def test_finish_needs_the_current_lease(services: Services) -> None:
    _, tid = submit(services)
    task = claim(services)
    assert task is not None
    stale = lifecycle.Lease(tid, "w1", task.attempts)
    with services.db.write() as session:  # reaped and re-claimed by another worker
        session.execute(update(Task).where(Task.id == tid).values(lease_until=0))
        lifecycle.reap(session, max_queue_wait=3600)
    assert claim(services, "w2") is not None
    with services.db.write() as session:
        assert not lifecycle.complete(
            session, stale, video_key="x", engine="sandbox", generation_seconds=1
        )
        assert lifecycle.fail(session, stale, code="GENERATION_FAILED", message="x") is None
        assert not lifecycle.heartbeat(session, stale, lease_until=time.time() + 5).held
    assert row(services, tid).worker_id == "w2"
    assert ledger_kinds(services, tid) == ["charge"]


def test_reaper_requeues_then_fails_with_refund(services: Services) -> None:
    _, tid = submit(services)
    for attempt in range(1, 4):
        task = claim(services)
        assert task is not None and task.attempts == attempt
        with services.db.write() as session:
            session.execute(update(Task).where(Task.id == tid).values(lease_until=0))
            reaped = lifecycle.reap(session, max_queue_wait=3600)
        if attempt < 3:
            assert reaped.requeued == [tid]
        else:
            assert reaped.failed == [tid]
    task = row(services, tid)
    assert task.status == TaskStatus.FAILED and task.attempts == 3
    assert ledger_kinds(services, tid) == ["charge", "refund"]


def test_queue_wait_expiry_fails_and_refunds(services: Services) -> None:
    _, tid = submit(services)
    with services.db.write() as session:
        session.execute(update(Task).where(Task.id == tid).values(created_at=time.time() - 7200))
        reaped = lifecycle.reap(session, max_queue_wait=3600)
    assert reaped.expired == [tid]
    assert row(services, tid).status == TaskStatus.FAILED
    assert ledger_kinds(services, tid) == ["charge", "refund"]


def test_release_hands_back_without_spending_attempt(services: Services) -> None:
    _, tid = submit(services)
    task = claim(services)
    assert task is not None
    with services.db.write() as session:
        assert lifecycle.release(session, lifecycle.lease_of(task))
    again = row(services, tid)
    assert again.status == TaskStatus.QUEUED and again.attempts == 0 and again.worker_id is None


def _slow(services: Services) -> Services:
    return with_settings(services, sandbox_delay=3.0)


def test_cancel_running_task_stops_and_refunds(services: Services) -> None:
    key_id, tid = submit(services)
    runner = Runner(_slow(services))
    thread = threading.Thread(target=run_once, args=(runner,))
    thread.start()
    deadline = time.time() + 10
    while row(services, tid).status != TaskStatus.RUNNING and time.time() < deadline:
        time.sleep(0.05)
    with services.db.read() as session:
        key = session.get(tasks.ApiKey, key_id)
    assert key is not None
    tasks.cancel(services, key, tid)
    thread.join(15)
    task = row(services, tid)
    assert task.status == TaskStatus.CANCELED and task.error_code == "TASK_CANCELED"
    assert ledger_kinds(services, tid) == ["charge", "refund"]
    assert task.video_key is None


def test_drain_hands_running_task_back(services: Services) -> None:
    _, tid = submit(services)
    runner = Runner(_slow(services))
    thread = threading.Thread(target=run_once, args=(runner,))
    thread.start()
    deadline = time.time() + 10
    while row(services, tid).stage != Stage.GENERATING and time.time() < deadline:
        time.sleep(0.05)
    runner.stop(drain=True)
    thread.join(15)
    task = row(services, tid)
    assert task.status == TaskStatus.QUEUED and task.attempts == 0
    assert ledger_kinds(services, tid) == ["charge"]
    assert run_once(Runner(services))
    assert row(services, tid).status == TaskStatus.COMPLETED


def test_progress_sink_reports_and_detects_lost_lease(services: Services) -> None:
    _, tid = submit(services)
    task = claim(services)
    assert task is not None
    lease = lifecycle.lease_of(task)
    sink = ProgressReporter(
        services, lease, draining=threading.Event(), lease_seconds=5, heartbeat_seconds=1
    )
    sink(Stage.GENERATING, 42.0)
    assert row(services, tid).percent == 42.0
    with services.db.write() as session:
        session.execute(update(Task).where(Task.id == tid).values(worker_id="thief"))
    with pytest.raises(Interrupted) as info:
        sink(Stage.ENCODING, 90.0)
    assert info.value.reason == "lease_lost"


def test_model_concurrency_caps_running_tasks(services: Services) -> None:
    submit(services)
    submit(services)
    with services.db.write() as session:
        assert lifecycle.models_with_capacity(session, {"sandbox": 1}) == ["sandbox"]
    assert claim(services, "a") is not None
    with services.db.write() as session:
        assert lifecycle.models_with_capacity(session, {"sandbox": 1}) == []
        assert lifecycle.models_with_capacity(session, {"sandbox": 2}) == ["sandbox"]


def test_misconfigured_model_fails_with_a_fixed_message_and_refund(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading passed the start-up check but fails on the task (files gone since): the user
    sees a fixed sentence, the operator's log gets the details, the task is refunded."""
    from reel.engines.base import EngineConfigError
    from reel.worker import runner as runner_module

    def broken_load(*_args: object, **_kwargs: object) -> None:
        raise EngineConfigError("cannot read /srv/secret/model/transformer")

    runner = Runner(services)
    monkeypatch.setattr(runner_module, "load_engine", broken_load)
    _, tid = submit(services)
    run_once(runner)
    task = row(services, tid)
    assert task.status == TaskStatus.FAILED
    assert task.error_message is not None and "/srv/secret" not in task.error_message
    assert "misconfigured" in task.error_message
    assert ledger_kinds(services, tid) == ["charge", "refund"]


def test_a_worker_failing_at_start_is_respawned_with_backoff(services: Services) -> None:
    from reel.worker.supervisor import Supervisor

    supervisor = Supervisor(services, processes=1)
    spawned: list[float] = []

    class Exited:  # a worker process that failed right after starting
        exitcode = 1
        pid = 0

        def is_alive(self) -> bool:
            return False

        def join(self, _timeout: float) -> None:
            pass

    def fake_spawn() -> Exited:
        spawned.append(time.monotonic())
        return Exited()

    supervisor._spawn = fake_spawn  # type: ignore[method-assign,assignment]
    supervisor._children = [Exited()]  # type: ignore[list-item]
    supervisor._spawned_at = {0: time.monotonic()}
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        supervisor._respawn_dead()
        time.sleep(0.05)
    # pauses of 1 s, then 3 s: two respawns in 4.5 s instead of ~90 in a tight loop
    assert len(spawned) == 2
    assert spawned[1] - spawned[0] >= 2.9
