"""Supervises worker processes: spawns, respawns, enforces the per-task time limit, runs the reaper.

Engines only ever run inside the child processes. A child whose task outlives
``task_time_limit`` is SIGKILLed and respawned, and its task fails with a refund. On stop, children
get SIGTERM and drain: a running task hands its lease back without spending an attempt.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess

from sqlalchemy import delete, select

from reel.db.models import Task, Worker
from reel.service import lifecycle
from reel.service.clock import now
from reel.service.context import Services
from reel.worker.process import child_main
from reel.worker.reaper import Reaper

#: A worker that exits sooner than this after starting counts as crashing at start-up.
_QUICK_EXIT = 10.0
_MAX_BACKOFF = 60.0
log = logging.getLogger("reel.supervisor")


class Supervisor:
    def __init__(
        self, services: Services, *, processes: int, models: Sequence[str] | None = None
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.processes = processes
        self.models = list(models) if models else None
        self._ctx = mp.get_context("spawn")
        self._children: list[BaseProcess] = []
        self._spawned_at: dict[int, float] = {}
        self._crashes: dict[int, int] = {}
        self._respawn_at: dict[int, float] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_reap = 0.0
        self.reaper = Reaper(services)

    def start(self) -> None:
        for i in range(self.processes):
            self._children.append(self._spawn())
            self._spawned_at[i] = time.monotonic()
        self._thread = threading.Thread(target=self._watch, name="reel-supervisor", daemon=True)
        self._thread.start()

    def _spawn(self) -> BaseProcess:
        proc = self._ctx.Process(
            target=child_main,
            args=(self.settings.for_process(), self.models),
            name="reel-worker",
            daemon=False,
        )
        proc.start()
        log.info("started worker process %s", proc.pid)
        return proc

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            try:
                self._respawn_dead()
                self._enforce_time_limit()
                if time.monotonic() - self._last_reap >= self.settings.reaper_seconds:
                    self._last_reap = time.monotonic()
                    self.reaper.run_once()
            except Exception:
                log.exception("supervisor pass failed; retrying")

    def _respawn_dead(self) -> None:
        """Replace exited workers. A killed one comes back at once; one that keeps failing right
        after it starts (exit code > 0: a broken model, a full disk) is respawned with a growing
        pause, up to a minute, not in a tight loop."""
        t = time.monotonic()
        for i, proc in enumerate(self._children):
            if proc.is_alive() or self._stopping.is_set():
                continue
            if i not in self._respawn_at:
                lived = t - self._spawned_at.get(i, t)
                failed_early = (proc.exitcode or 0) > 0 and lived < _QUICK_EXIT
                self._crashes[i] = self._crashes.get(i, 0) + 1 if failed_early else 0
                delay = min(_MAX_BACKOFF, 2.0 ** self._crashes[i] - 1)
                self._respawn_at[i] = t + delay
                log.warning(
                    "worker process %s exited (%s); respawning in %.0fs",
                    proc.pid,
                    proc.exitcode,
                    delay,
                )
            if t >= self._respawn_at[i]:
                proc.join(0)
                del self._respawn_at[i]
                self._children[i] = self._spawn()
                self._spawned_at[i] = time.monotonic()

    def _enforce_time_limit(self) -> None:
        limit = self.settings.task_time_limit
        pids = {p.pid: p for p in self._children if p.is_alive()}
        with self.services.db.read() as session:
            rows = session.execute(
                select(Worker.id, Worker.pid, Worker.current_task).where(
                    Worker.pid.in_(list(pids)),
                    Worker.current_task.is_not(None),
                    Worker.task_started_at < now() - limit,
                )
            ).all()
        for worker_id, pid, task_id in rows:
            log.error("task %s exceeded the %ss time limit; killing worker %s", task_id, limit, pid)
            proc = pids[pid]
            os.kill(pid, signal.SIGKILL)
            proc.join(5)
            with self.services.db.write() as session:
                task = session.get(Task, task_id)
                if task is not None and task.worker_id == worker_id:
                    lifecycle.fail(
                        session,
                        lifecycle.lease_of(task),
                        code="GENERATION_FAILED",
                        message=f"Generation exceeded the time limit ({limit:.0f}s)",
                    )
                session.execute(delete(Worker).where(Worker.id == worker_id))

    def stop(self, *, timeout: float | None = None) -> None:
        """SIGTERM every child (they drain), wait, then SIGKILL stragglers."""
        if self._children:
            log.info("stopping %d worker process(es); draining", len(self._children))
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        for proc in self._children:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + (self.settings.drain_seconds if timeout is None else timeout)
        for proc in self._children:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("worker %s did not drain in time; killing", proc.pid)
                proc.kill()
                proc.join(5)
        self._children.clear()

    def wait(self) -> None:
        """Block until stopped (for `reel worker`)."""
        while not self._stopping.wait(0.5):
            pass
