"""Workers' liveness and per-model queue depth."""

from __future__ import annotations

import time

from sqlalchemy import update

from reel.db.models import Task, Worker
from reel.service import fleet
from reel.service.context import Services
from tests.factories import make_key
from tests.service.helpers import submit


def add_worker(services: Services, wid: str, *, seen: float, task: str | None = None) -> None:
    with services.db.write() as session:
        session.add(
            Worker(
                id=wid,
                host="gpu-1",
                pid=42,
                models=["sandbox"],
                current_task=task,
                started_at=seen - 100,
                last_seen=seen,
            )
        )


def test_workers_alive_by_last_seen_or_running_lease(services: Services) -> None:
    t = time.time()
    key = make_key(services, credits=100).id
    busy_task = submit(services, key)
    with services.db.write() as session:
        session.execute(
            update(Task)
            .where(Task.id == busy_task)
            .values(status="running", worker_id="busy", lease_until=t + 30)
        )
    add_worker(services, "idle", seen=t - 1)
    add_worker(services, "busy", seen=t - 600, task=busy_task)
    add_worker(services, "gone", seen=t - 600)
    submit(services, key)
    submit(services, key)
    with services.db.read() as session:
        views = fleet.workers(session, stale_after=45, at=t)
        assert {w.id: w.alive for w in views} == {"idle": True, "busy": True, "gone": False}
        assert views[-1].id == "gone"
        models = fleet.models(session, services.catalog, views)
    (sandbox,) = models
    assert (sandbox.name, sandbox.engine, sandbox.queued, sandbox.running) == (
        "sandbox",
        "sandbox",
        2,
        1,
    )
    assert sandbox.workers == 2 and sandbox.tiers == (
        "sora2",
        "sora2-pro-standard",
        "sora2-pro-high",
    )
    assert sandbox.oldest_queued_at is not None


def test_models_lists_tasks_of_models_no_longer_configured(services: Services) -> None:
    key = make_key(services, credits=100).id
    tid = submit(services, key)
    with services.db.write() as session:
        session.execute(update(Task).where(Task.id == tid).values(model="retired"))
    with services.db.read() as session:
        models = fleet.models(session, services.catalog, [])
    assert [(m.name, m.queued, m.workers) for m in models] == [("sandbox", 0, 0), ("retired", 1, 0)]
    assert models[1].engine == "(not in the models file)"


def test_operations_come_from_live_workers_only(services: Services) -> None:
    t = time.time()
    add_worker(services, "old", seen=t - 1)  # predates workers.operations: says nothing
    with services.db.read() as session:
        assert fleet.operations_of(session, services.settings, "sandbox") is None
    add_worker(services, "edits", seen=t - 1)
    add_worker(services, "dead", seen=t - 600)
    add_worker(services, "other", seen=t - 1)
    with services.db.write() as session:
        session.execute(
            update(Worker).where(Worker.id == "edits").values(operations={"sandbox": ["edit"]})
        )
        session.execute(
            update(Worker)
            .where(Worker.id == "dead")
            .values(operations={"sandbox": ["extend", "references"]})
        )
        session.execute(
            update(Worker).where(Worker.id == "other").values(operations={"wan": ["extend"]})
        )
    with services.db.read() as session:
        assert fleet.operations_of(session, services.settings, "sandbox") == {"edit"}
        assert fleet.operations_of(session, services.settings, "missing") is None


def test_a_runner_advertises_what_its_models_do(services: Services) -> None:
    from reel.worker.runner import Runner

    runner = Runner(services)
    with runner.registered(), services.db.read() as session:
        row = session.get(Worker, runner.worker_id)
        assert row is not None and row.operations == {"sandbox": ["extend", "edit", "references"]}
        assert fleet.operations_of(session, services.settings, "sandbox") == {
            "extend",
            "edit",
            "references",
        }
