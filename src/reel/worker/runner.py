"""One worker process: claim → heartbeat → engine → media → storage → settle, one task at a time."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import delete, update

from reel.db.models import Task, Worker
from reel.engines.base import Engine, EngineError, GenerationRequest, Interrupted
from reel.engines.registry import load_engine
from reel.media.previews import spritesheet, thumbnail
from reel.service import lifecycle
from reel.service.clock import now
from reel.service.context import Services
from reel.storage import StorageError
from reel.types import Mode, Stage
from reel.worker.preflight import check_models
from reel.worker.progress import ProgressReporter

log = logging.getLogger("reel.worker")


def preview_keys(video_key: str) -> tuple[str, str]:
    stem = video_key.rsplit(".", 1)[0]
    return f"{stem}.thumb.webp", f"{stem}.sprite.jpg"


class Runner:
    """Runs tasks of ``models`` until :meth:`stop` is called."""

    def __init__(
        self,
        services: Services,
        *,
        models: Sequence[str] | None = None,
        worker_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.models = list(models or services.catalog.models)
        unknown = set(self.models) - set(services.catalog.models)
        if unknown:
            raise ValueError(
                f"unknown models {sorted(unknown)}; known: {sorted(services.catalog.models)}"
            )
        check_models(services.catalog, self.models, self.settings)
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._engines: dict[str, Engine] = {}
        self._stop = threading.Event()
        self._draining = threading.Event()
        self._clock = clock
        self._last_touch = 0.0

    # --- lifecycle ---------------------------------------------------------------------------
    def stop(self, *, drain: bool = True) -> None:
        if drain:
            self._draining.set()
        self._stop.set()

    def run_forever(self) -> None:
        self._register()
        log.info("worker %s serving models %s", self.worker_id, ", ".join(self.models))
        try:
            while not self._stop.is_set():
                if not self.run_once():
                    self._stop.wait(self.settings.poll_seconds)
                self._touch()
        finally:
            self._unregister()
            for engine in self._engines.values():
                engine.close()

    def run_once(self) -> bool:
        """Claim and run one task. ``False`` when nothing was waiting."""
        lease_until = now() + self.settings.lease_seconds
        with self.services.db.write() as session:
            task = self.services.dispatcher.claim(
                session, worker_id=self.worker_id, models=self.models, lease_until=lease_until
            )
            if task is None:
                return False
            lease = lifecycle.lease_of(task)
            lifecycle.start(session, lease)
        self._run(task, lease)
        return True

    # --- one task ----------------------------------------------------------------------------
    def _run(self, task: Task, lease: lifecycle.Lease) -> None:
        self._set_current(task.id)
        reporter = ProgressReporter(
            self.services,
            lease,
            draining=self._draining,
            lease_seconds=self.settings.lease_seconds,
            heartbeat_seconds=self.settings.heartbeat_seconds,
        )
        started = self._clock()
        spec = self.services.catalog.models[task.model]
        with tempfile.TemporaryDirectory(prefix="reel-task-") as tmp, reporter.running():
            work = Path(tmp)
            try:
                engine = self._engine(task.model)
                req = self._request(task, work, spec.params)
                reporter(Stage.GENERATING, 0.0)
                output = engine.generate(req, reporter)
                reporter(Stage.STORING, 99.0)
                video_key = f"videos/{task.id}-a{lease.attempt}.mp4"
                self._store(output.path, video_key)
            except Interrupted as stop:
                self._interrupted(lease, stop.reason)
                return
            except EngineError as exc:
                log.warning("task %s failed in engine: %s", task.id, exc.message)
                self._settle_failure(
                    lease, exc.message, retryable=exc.retryable, engine=spec.engine
                )
                return
            except StorageError as exc:
                log.error("task %s: storing the video failed: %s", task.id, exc)
                self._settle_failure(
                    lease, "Storing the video failed", retryable=False, engine=spec.engine
                )
                return
            except Exception:
                log.exception("task %s crashed", task.id)
                self._settle_failure(
                    lease, "Video generation failed", retryable=False, engine=spec.engine
                )
                return
        elapsed = self._clock() - started
        with self.services.db.write() as session:
            done = lifecycle.complete(
                session, lease, video_key=video_key, engine=engine.name, generation_seconds=elapsed
            )
        if not done:
            log.warning("task %s: lease lost before completion; discarding output", task.id)
            self._delete_outputs(video_key)
        else:
            log.info("task %s completed in %.1fs", task.id, elapsed)
        self._set_current(None)

    def _request(self, task: Task, work: Path, params: object) -> GenerationRequest:
        image_path = None
        if task.mode == Mode.IMAGE_TO_VIDEO and task.image_key:
            image_path = work / "start.png"
            self.services.storage.get_to(task.image_key, image_path)
        return GenerationRequest(
            task_id=task.id,
            prompt=task.prompt,
            mode=Mode(task.mode),
            width=task.width,
            height=task.height,
            duration_s=float(task.duration_s),
            output_path=work / "out.mp4",
            image_path=image_path,
            seed=task.seed,
            params=params if isinstance(params, dict) else {},
        )

    def _store(self, video: Path, video_key: str) -> None:
        storage = self.services.storage
        thumb_key, sprite_key = preview_keys(video_key)
        thumb, sprite = video.with_suffix(".thumb.webp"), video.with_suffix(".sprite.jpg")
        try:
            thumbnail(video, thumb)
            spritesheet(video, sprite)
        except Exception as exc:  # previews are a nicety; never fail a finished video for them
            log.warning("previews for %s failed: %s", video_key, exc)
        else:
            storage.put_file(thumb_key, thumb)
            storage.put_file(sprite_key, sprite)
        storage.put_file(video_key, video)

    def _delete_outputs(self, video_key: str) -> None:
        for key in (video_key, *preview_keys(video_key)):
            self.services.storage.delete(key)

    def _interrupted(self, lease: lifecycle.Lease, reason: str) -> None:
        with self.services.db.write() as session:
            if reason == "canceled":
                lifecycle.cancel_running(session, lease)
                log.info("task %s canceled", lease.task_id)
            elif reason == "draining":
                lifecycle.release(session, lease)
                log.info("task %s handed back (draining)", lease.task_id)
            else:
                log.warning("task %s: lease lost; stopped", lease.task_id)
        self._set_current(None)

    def _settle_failure(
        self, lease: lifecycle.Lease, message: str, *, retryable: bool, engine: str
    ) -> None:
        with self.services.db.write() as session:
            lifecycle.fail(
                session,
                lease,
                code="GENERATION_FAILED",
                message=message,
                retryable=retryable,
                engine=engine,
            )
        self._set_current(None)

    def _engine(self, model: str) -> Engine:
        engine = self._engines.get(model)
        if engine is None:
            spec = self.services.catalog.models[model]
            engine = load_engine(spec.engine, params=spec.params, settings=self.settings)
            self._engines[model] = engine
        return engine

    # --- heartbeat row -----------------------------------------------------------------------
    def _register(self) -> None:
        t = now()
        with self.services.db.write() as session:
            session.merge(
                Worker(
                    id=self.worker_id,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    models=self.models,
                    started_at=t,
                    last_seen=t,
                )
            )

    def _touch(self) -> None:
        if self._clock() - self._last_touch < self.settings.heartbeat_seconds:
            return
        self._last_touch = self._clock()
        with self.services.db.write() as session:
            session.execute(
                update(Worker).where(Worker.id == self.worker_id).values(last_seen=now())
            )

    def _set_current(self, task_id: str | None) -> None:
        t = now()
        with self.services.db.write() as session:
            session.execute(
                update(Worker)
                .where(Worker.id == self.worker_id)
                .values(current_task=task_id, task_started_at=t if task_id else None, last_seen=t)
            )

    def _unregister(self) -> None:
        with self.services.db.write() as session:
            session.execute(delete(Worker).where(Worker.id == self.worker_id))
