"""Tasks delivered by procrastinate (scale-out): a job names a task, the Runner runs it.

The job body is the embedded loop's code path (claim with a lease → heartbeat → engine →
store → settle); only the way the worker learns *which* task differs. A job whose task is no
longer queued for this worker's models (delivered twice, canceled, held by another worker)
does nothing. Lease, heartbeat, reaper and ledger are the task row's, never the queue's.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any, Final, Literal

import procrastinate
from procrastinate.job_context import AbortReason as JobAbortReason
from procrastinate.job_context import JobContext

from reel.config import Settings
from reel.queue.procrastinate import MAINTENANCE_QUEUE, TASK_NAME, make_app, stalled_seconds
from reel.worker.runner import Runner

log = logging.getLogger("reel.worker")

_RETRY_STALLED: Final = "reel.retry_stalled_jobs"


def build_app(settings: Settings, *, maintenance: bool) -> procrastinate.App:
    """The worker's app: the task-running job, plus the periodic stalled-job retry."""
    app = make_app(settings)

    @app.task(name=TASK_NAME, pass_context=True)
    def run_task(context: JobContext, task_id: str) -> bool:
        runner: Runner = context.additional_context["runner"]
        return runner.run_task(task_id, abort_reason=lambda: _abort_reason(context))

    if maintenance:
        seconds = stalled_seconds(settings)
        every = max(1, min(59, round(settings.reaper_seconds)))

        # procrastinate's documented recipe: jobs of workers that stopped sending heartbeats
        # (killed, machine lost) go back to "todo". Their tasks are looked after by the task
        # row's own lease and reaper; this keeps the queue itself from holding dead jobs.
        @app.periodic(cron=f"* * * * * */{every}")
        @app.task(
            name=_RETRY_STALLED,
            queue=MAINTENANCE_QUEUE,
            queueing_lock=_RETRY_STALLED,
            priority=100,
            pass_context=True,
        )
        async def retry_stalled_jobs(context: JobContext, timestamp: int) -> None:  # noqa: ARG001
            manager = context.app.job_manager
            for job in await manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
                log.warning("retrying job %s of a stalled worker", job.id)
                await manager.retry_job(job)

    return app


def _abort_reason(context: JobContext) -> Literal["canceled", "draining"] | None:
    reason = context.abort_reason()
    if reason is None:
        return None
    return "canceled" if reason == JobAbortReason.USER_REQUEST else "draining"


def _worker_options(runner: Runner) -> dict[str, Any]:
    settings = runner.settings
    return {
        "name": runner.worker_id,
        "concurrency": 1,  # one task per process (per GPU); run more processes for more
        "install_signal_handlers": False,
        "delete_jobs": "always",  # the task row keeps the history; jobs are only messages
        "additional_context": {"runner": runner},
        "update_heartbeat_interval": settings.heartbeat_seconds,
        "stalled_worker_timeout": stalled_seconds(settings),
        "shutdown_graceful_timeout": settings.drain_seconds,
    }


def serve(runner: Runner) -> None:
    """Run jobs of the runner's models until SIGTERM/SIGINT, then drain."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # procrastinate logs every job start and end at INFO; Reel logs the task outcomes
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    asyncio.run(_serve(runner))


async def _serve(runner: Runner) -> None:
    if runner.stopping:
        return
    app = build_app(runner.settings, maintenance=True)
    loop = asyncio.get_running_loop()
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(
                queues=[*runner.models, MAINTENANCE_QUEUE], **_worker_options(runner)
            )
        )

        def stop() -> None:
            log.info("worker %s draining", runner.worker_id)
            runner.stop(drain=True)  # a running task hands its lease back at its next step
            worker.cancel()  # procrastinate then waits for that job, up to drain_seconds

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        with runner.registered():
            try:
                await worker
            except asyncio.CancelledError:
                pass


def run_one(runner: Runner) -> bool:
    """Take at most one delivered job of the runner's models and run it (tests, tools).

    ``True`` when a task ran; ``False`` when no job waited or its task needed nothing.
    """
    ran: list[bool] = []

    def once(call_next: Any, _context: JobContext, worker: Any) -> Any:
        try:
            result = call_next()
            ran.append(bool(result))
            return result
        finally:
            worker.stop()

    build_app(runner.settings, maintenance=False).run_worker(
        queues=runner.models,
        wait=False,
        listen_notify=False,
        task_middleware=[once],
        **_worker_options(runner),
    )
    return any(ran)
