"""The embedded queue's doorbell: a committed task wakes idle workers (in this process or
another) at once, long before their next poll; a rolled-back one wakes nobody."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from reel.db.models import ApiKey, Task
from reel.queue import LocalDispatcher
from reel.queue.doorbell import Doorbell
from reel.service import tasks
from reel.service.context import Services
from reel.types import Aspect, Mode, TaskStatus, Tier
from reel.worker.process import serve
from reel.worker.runner import Runner
from tests.conftest import with_settings
from tests.factories import make_key

pytestmark = pytest.mark.skipif(not Doorbell.available(), reason="no named pipes here")

CMD = tasks.NewTask(
    prompt="a bell", mode=Mode.TEXT_TO_VIDEO, tier=Tier.SORA2, aspect=Aspect.PORTRAIT, duration_s=10
)

LISTEN = """
import sys
from pathlib import Path
from reel.queue.doorbell import Doorbell

with Doorbell(Path(sys.argv[1])).listening() as listener:
    print("listening", flush=True)
    print("rang" if listener.wait(20) else "timed out", flush=True)
"""


def _doorbell(services: Services) -> Doorbell:
    dispatcher = services.dispatcher
    assert isinstance(dispatcher, LocalDispatcher) and dispatcher.doorbell is not None
    return dispatcher.doorbell


def _wait_for(predicate: object, timeout: float) -> float:
    assert callable(predicate)
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.01)
    return time.monotonic() - started


def test_a_created_task_starts_at_once_on_a_worker_polling_every_30_s(
    services: Services,
) -> None:
    slow_poll = with_settings(services, poll_seconds=30.0)
    runner = Runner(slow_poll)
    worker = threading.Thread(target=serve, args=(runner,), daemon=True)
    worker.start()
    wake = _doorbell(services).directory
    _wait_for(lambda: wake.is_dir() and any(wake.iterdir()), 10)  # its pipe is open
    time.sleep(0.2)  # and its first poll found nothing
    issued = make_key(services, credits=100)
    with services.db.read() as session:
        key = session.get(ApiKey, issued.id)
    assert key is not None
    task_id = tasks.create(services, key, CMD).id

    def started() -> bool:
        with services.db.read() as session:
            status = session.scalar(select(Task.status).where(Task.id == task_id))
        return status != TaskStatus.QUEUED

    assert _wait_for(started, 10) < 5
    runner.stop()  # interrupts the 30 s wait too
    worker.join(10)
    assert not worker.is_alive()
    assert not any(wake.iterdir())  # its pipe is gone with it


def test_a_ring_reaches_another_process_and_removes_dead_pipes(tmp_path: Path) -> None:
    bell = Doorbell(tmp_path / "wake")
    child = subprocess.Popen(
        [sys.executable, "-c", LISTEN, str(bell.directory)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "listening"
        os.mkfifo(bell.directory / "12345-dead.wake", 0o600)  # a killed worker's pipe
        started = time.monotonic()
        bell.ring()
        assert child.stdout.readline().strip() == "rang"
        assert time.monotonic() - started < 5
    finally:
        child.wait(10)
    assert not (bell.directory / "12345-dead.wake").exists()


def test_only_a_committed_transaction_rings(services: Services) -> None:
    dispatcher = services.dispatcher
    assert isinstance(dispatcher, LocalDispatcher)
    with _doorbell(services).listening() as listener:
        assert listener is not None
        issued = make_key(services, credits=100)
        with services.db.read() as session:
            key = session.get(ApiKey, issued.id)
        assert key is not None
        with pytest.raises(RuntimeError), services.db.write() as session:
            dispatcher.enqueue(session, Task(id="task_rolled_back"))
            raise RuntimeError("the create failed after enqueue")
        assert not listener.wait(0.2)
        tasks.create(services, key, CMD)
        assert listener.wait(0)  # rang on commit, already waiting in the pipe
        assert not listener.wait(0.1)  # and drained
