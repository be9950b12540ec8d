"""One worker process: claim → heartbeat → engine → media → storage → settle, one task at a time."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from reel.db.models import Task, Worker
from reel.engines.base import (
    Engine,
    EngineConfigError,
    EngineError,
    GenerationRequest,
    Interrupted,
)
from reel.engines.registry import check_engine, load_engine
from reel.media.previews import spritesheet, thumbnail
from reel.queue import claim_next, claim_task
from reel.queue.doorbell import Doorbell, Listener
from reel.service import lifecycle
from reel.service.catalog import ModelSpec
from reel.service.clock import now
from reel.service.context import Services
from reel.storage import StorageError, naming
from reel.storage.naming import preview_keys
from reel.storage.signing import callback_path
from reel.types import Mode, Stage, TaskStatus
from reel.worker import operations
from reel.worker.lengths import check_length
from reel.worker.outputs import Finisher, Withheld
from reel.worker.preflight import advertised_operations, check_models
from reel.worker.progress import AbortReason, ProgressReporter

_MISCONFIGURED = "The model serving this task is misconfigured; the operator has been notified"
log = logging.getLogger("reel.worker")


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
        self._capabilities = check_models(services.catalog, self.models, self.settings)
        self._finisher = Finisher(services, self.models)  # moderation, mark, C2PA signature
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._concurrency = {m: services.catalog.models[m].concurrency for m in self.models}
        self._engines: dict[str, Engine] = {}
        self._stop = threading.Event()
        self._draining = threading.Event()
        self._clock = clock
        self._listener: Listener | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def stop(self, *, drain: bool = True) -> None:
        if drain:
            self._draining.set()
        self._stop.set()
        if self._listener is not None:
            self._listener.interrupt()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @contextmanager
    def registered(self) -> Iterator[None]:
        """Advertise this worker (heartbeat row, refreshed by a thread even while a long task
        runs) while serving; release engines after."""
        self._register()
        log.info("worker %s serving models %s", self.worker_id, ", ".join(self.models))
        done = threading.Event()
        beat = threading.Thread(
            target=self._keep_alive, args=(done,), name="reel-worker-heartbeat", daemon=True
        )
        beat.start()
        try:
            yield
        finally:
            done.set()
            beat.join(5)
            self._unregister()
            for engine in self._engines.values():
                engine.close()

    def run_forever(self, *, doorbell: Doorbell | None = None) -> None:
        """The embedded queue's loop: claim queued rows until stopped. Between polls, a task
        queued by any process of this machine wakes it at once through ``doorbell``."""
        bell = doorbell.listening() if doorbell is not None else nullcontext(None)
        with self.registered(), bell as listener:
            self._listener = listener
            idle = self._stop.wait if listener is None else listener.wait
            try:
                while not self._stop.is_set():
                    if not self.run_next():
                        idle(self.settings.poll_seconds)
            finally:
                self._listener = None

    def run_next(self) -> bool:
        """Claim the next queued task of our models and run it. ``False`` when none waited.

        The embedded queue's pull; a queue that delivers task ids calls :meth:`run_task`.
        """
        lease_until = now() + self.settings.lease_seconds
        with self.services.db.write() as session:
            open_models = lifecycle.models_with_capacity(session, self._concurrency)
            if not open_models:
                return False
            task = claim_next(
                session,
                worker_id=self.worker_id,
                models=open_models,
                lease_until=lease_until,
                clock=now,
            )
            if task is None:
                return False
            self._set_current(task.id, session=session)
        self._run(task, lifecycle.lease_of(task))
        return True

    def run_task(self, task_id: str, *, abort_reason: AbortReason | None = None) -> bool:
        """Run the task a queue delivered, if it is still queued for one of our models.

        ``False`` when there was nothing to do: a repeated delivery, a task already canceled
        or finished, or one another worker holds. ``abort_reason`` is polled between steps.
        """
        lease_until = now() + self.settings.lease_seconds
        with self.services.db.write() as session:
            task = claim_task(
                session,
                task_id,
                worker_id=self.worker_id,
                models=self.models,
                lease_until=lease_until,
                clock=now,
            )
            if task is None:
                return False
            self._set_current(task.id, session=session)
        self._run(task, lifecycle.lease_of(task), abort_reason=abort_reason)
        return True

    # --- one task ----------------------------------------------------------------------------
    def _run(
        self, task: Task, lease: lifecycle.Lease, *, abort_reason: AbortReason | None = None
    ) -> None:
        reporter = ProgressReporter(
            self.services,
            lease,
            draining=self._draining,
            lease_seconds=self.settings.lease_seconds,
            heartbeat_seconds=self.settings.heartbeat_seconds,
            abort_reason=abort_reason,
        )
        started = self._clock()
        spec = self.services.catalog.models[task.model]
        with tempfile.TemporaryDirectory(prefix="reel-task-") as tmp, reporter.running():
            work = Path(tmp)
            try:
                engine = self._engine(task.model)
                req = self._request(task, work, spec.params, lease)
                reporter(Stage.GENERATING, 0.0)
                output = operations.generate(
                    engine,
                    task,
                    req,
                    reporter,
                    storage=self.services.storage,
                    capabilities=lambda: check_engine(
                        spec.engine, params=spec.params, settings=self.settings
                    ),
                )
                check_length(task, output.path)
                reporter(Stage.STORING, 99.0)
                delivered = self._finisher.finish(
                    task, lease, output, engine=engine.name, image_path=req.image_path
                )
                video_key = naming.video_key(task.id, lease.attempt)
                self._store(delivered.path, video_key)
            except Withheld as held:
                self._settle_failure(
                    task,
                    lease,
                    held.message,
                    retryable=held.retryable,
                    engine=self._label(task.model, spec),
                    code=held.code,
                )
                return
            except Interrupted as stop:
                self._interrupted(task, lease, stop.reason)
                return
            except EngineConfigError as exc:
                # Operator details (paths, packages) go to the log, not to the user.
                log.error("task %s: model %r is misconfigured: %s", task.id, task.model, exc)
                self._settle_failure(
                    task,
                    lease,
                    _MISCONFIGURED,
                    retryable=False,
                    engine=self._label(task.model, spec),
                )
                return
            except EngineError as exc:
                log.warning("task %s failed in engine: %s", task.id, exc.message)
                self._settle_failure(
                    task,
                    lease,
                    exc.message,
                    retryable=exc.retryable,
                    engine=self._label(task.model, spec),
                )
                return
            except StorageError as exc:
                log.error("task %s: storing the video failed: %s", task.id, exc)
                self._settle_failure(
                    task,
                    lease,
                    "Storing the video failed",
                    retryable=False,
                    engine=self._label(task.model, spec),
                )
                return
            except Exception:
                log.exception("task %s crashed", task.id)
                self._settle_failure(
                    task,
                    lease,
                    "Video generation failed",
                    retryable=False,
                    engine=self._label(task.model, spec),
                )
                return
        elapsed = self._clock() - started
        with self.services.db.write() as session:
            done = lifecycle.complete(
                session,
                lease,
                video_key=video_key,
                engine=engine.name,
                generation_seconds=elapsed,
                metadata=delivered.metadata,
            )
        if not done:
            log.warning("task %s: lease lost before completion; discarding output", task.id)
            self._delete_outputs(video_key)
        else:
            log.info("task %s completed in %.1fs", task.id, elapsed)
        self._set_current(None)

    def _label(self, model: str, spec: ModelSpec) -> str:
        """The engine name users see: the loaded engine's own label, else the models file's."""
        engine = self._engines.get(model)
        return engine.name if engine is not None else spec.engine

    def _request(
        self, task: Task, work: Path, params: object, lease: lifecycle.Lease
    ) -> GenerationRequest:
        image_path = image_url = None
        if task.mode == Mode.IMAGE_TO_VIDEO and task.image_key:
            image_path = work / "start.png"
            self.services.storage.get_to(task.image_key, image_path)
            if self.settings.public_url:  # for engines whose backend fetches the image itself
                image_url = self.services.storage.url(
                    task.image_key,
                    base_url=self.settings.public_url,
                    expires_in=self.settings.media_url_ttl,
                )
        callback_url = None
        if self.settings.public_url:  # for upstreams that call back when a job changes
            base = self.settings.public_url.rstrip("/")
            callback_url = base + callback_path(self.settings.signing_key, task.id)
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
            image_url=image_url,
            resume=lifecycle.engine_state(task),
            checkpoint=lambda state: self._checkpoint(lease, state),
            callback_url=callback_url,
            woken=self._woken(task) if callback_url else None,
        )

    def _woken(self, task: Task) -> Callable[[], bool]:
        """Whether the task's upstream called back since the last ask (see api/routes/hooks)."""
        last = [(task.extra or {}).get(lifecycle.UPSTREAM_CALLBACK)]

        def woken() -> bool:
            try:
                with self.services.db.read() as session:
                    seen = lifecycle.upstream_callback(session, task.id)
            except Exception as exc:  # the engine polls on its own schedule anyway
                log.warning("task %s: callback mark not read: %s", task.id, exc)
                return False
            changed, last[0] = seen != last[0], seen
            return changed

        return woken

    def _checkpoint(self, lease: lifecycle.Lease, state: Mapping[str, object]) -> None:
        with self.services.db.write() as session:
            if not lifecycle.save_engine_state(session, lease, state):
                raise Interrupted("lease_lost")

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

    def _interrupted(self, task: Task, lease: lifecycle.Lease, reason: str) -> None:
        with self.services.db.write() as session:
            if reason == "canceled":
                lifecycle.cancel_running(session, lease)
                log.info("task %s canceled", lease.task_id)
            elif reason == "draining":
                if lifecycle.release(session, lease):
                    self.services.dispatcher.enqueue(session, task)
                log.info("task %s handed back (draining)", lease.task_id)
            else:
                log.warning("task %s: lease lost; stopped", lease.task_id)
        self._set_current(None)

    def _settle_failure(
        self,
        task: Task,
        lease: lifecycle.Lease,
        message: str,
        *,
        retryable: bool,
        engine: str,
        code: str = "GENERATION_FAILED",
    ) -> None:
        with self.services.db.write() as session:
            outcome = lifecycle.fail(
                session,
                lease,
                code=code,
                message=message,
                retryable=retryable,
                engine=engine,
            )
            if outcome is TaskStatus.QUEUED:
                self.services.dispatcher.enqueue(session, task)
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
                    operations={m: advertised_operations(c) for m, c in self._capabilities.items()},
                    started_at=t,
                    last_seen=t,
                )
            )

    def touch(self) -> None:
        """Refresh this worker's heartbeat row."""
        with self.services.db.write() as session:
            session.execute(
                update(Worker).where(Worker.id == self.worker_id).values(last_seen=now())
            )

    def _keep_alive(self, done: threading.Event) -> None:
        while not done.wait(self.settings.heartbeat_seconds):
            try:
                self.touch()
            except Exception as exc:  # the database may be briefly away; try again next beat
                log.warning("worker %s: heartbeat row not refreshed: %s", self.worker_id, exc)

    def _set_current(self, task_id: str | None, *, session: Session | None = None) -> None:
        """The task this worker runs now, on its heartbeat row (in the claim's transaction
        when ``session`` is given, so starting a task costs one transaction)."""
        t = now()
        current = (
            update(Worker)
            .where(Worker.id == self.worker_id)
            .values(current_task=task_id, task_started_at=t if task_id else None, last_seen=t)
        )
        if session is not None:
            session.execute(current)
            return
        with self.services.db.write() as own:
            own.execute(current)

    def _unregister(self) -> None:
        with self.services.db.write() as session:
            session.execute(delete(Worker).where(Worker.id == self.worker_id))
