"""Concurrent operator retries of one failed task: one new task, one charge, on SQLite and
PostgreSQL (the database refuses the second n-th retry of a task)."""

from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from reel.db.models import LedgerEntry, Task
from reel.service import admin, keys
from reel.service.context import Services
from reel.service.errors import TaskNotRetryable
from reel.types import TaskStatus
from tests.conftest import BACKENDS, backend_param
from tests.factories import make_key
from tests.service.helpers import finish, submit

backend = pytest.fixture(params=BACKENDS)(backend_param)

#: Rounds of the randomized race; REEL_TEST_LONG=1 runs the long version.
ROUNDS = 30 if os.environ.get("REEL_TEST_LONG") else 3
RACERS = 5


def _race(services: Services, task_id: str, *, jitter: float) -> list[str]:
    """``RACERS`` operators press "retry" at once; returns the ids of the tasks created."""
    start = threading.Barrier(RACERS)

    def press(_: int) -> str | None:
        start.wait()
        time.sleep(random.uniform(0, jitter))
        try:
            return admin.retry(services, task_id).id
        except TaskNotRetryable:
            return None

    with ThreadPoolExecutor(RACERS) as pool:
        return [t for t in pool.map(press, range(RACERS)) if t is not None]


def _charges(services: Services, key_id: str) -> int:
    with services.db.read() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.key_id == key_id, LedgerEntry.kind == "charge")
            )
            or 0
        )


def test_concurrent_retries_create_and_charge_one_task(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = make_key(services, credits=100).id
    original = submit(services, key)  # 4 credits
    finish(services, original, TaskStatus.FAILED, at=time.time())
    # Every operator's check passes before any retry is inserted: the worst interleaving.
    checked = threading.Barrier(RACERS, timeout=10)
    refusal = admin.retry_refusal

    def slow_refusal(detail: admin.TaskDetail) -> str | None:
        verdict = refusal(detail)
        checked.wait()
        return verdict

    monkeypatch.setattr(admin, "retry_refusal", slow_refusal)
    created = _race(services, original, jitter=0)
    assert len(created) == 1, created
    assert _charges(services, key) == 2  # the original and its one retry
    with services.db.read() as session:
        assert keys.get(session, key).balance == 100 - 4
        assert session.scalar(select(func.count()).select_from(Task)) == 2


def test_randomized_retry_races_never_charge_twice(services: Services) -> None:
    key = make_key(services, credits=1000).id
    task = submit(services, key)
    finish(services, task, TaskStatus.FAILED, at=time.time())
    for round_ in range(ROUNDS):
        created = _race(services, task, jitter=0.02)
        assert len(created) == 1, (round_, created)
        assert _charges(services, key) == round_ + 2
        # the retry fails too: the original may be retried once more
        finish(services, created[0], TaskStatus.FAILED, at=time.time())
    with services.db.read() as session:
        balance = keys.get(session, key).balance
        total = session.scalar(
            select(func.sum(LedgerEntry.amount)).where(LedgerEntry.key_id == key)
        )
    assert balance == total == 1000  # every charge refunded: each failed exactly once
