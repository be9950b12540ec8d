"""One worker process: a Runner fed by whichever queue the settings name.

The Runner knows nothing of queues. Here the embedded queue's pull loop
(:meth:`Runner.run_forever`) or procrastinate's deliveries (:mod:`reel.worker.jobs`, which wraps
the Runner) are chosen; procrastinate is imported only when it is the queue.
"""

from __future__ import annotations

import logging
import signal

from reel.config import Settings
from reel.logs import configure_logging
from reel.queue import LocalDispatcher
from reel.service.context import build_services
from reel.worker.runner import Runner

log = logging.getLogger("reel.worker")


def serve(runner: Runner) -> None:
    """Run tasks of the runner's models until it is stopped (embedded) or signalled (queue)."""
    if runner.services.dispatcher.pushes:
        from reel.worker.jobs import serve as serve_jobs

        serve_jobs(runner)
    else:
        dispatcher = runner.services.dispatcher
        bell = dispatcher.doorbell if isinstance(dispatcher, LocalDispatcher) else None
        runner.run_forever(doorbell=bell)


def run_once(runner: Runner) -> bool:
    """Run at most one task (tests, tools): the next queued one, or the next delivered job.

    ``False`` when nothing waited or the delivered task needed nothing.
    """
    if runner.services.dispatcher.pushes:
        from reel.worker.jobs import run_one

        return run_one(runner)
    return runner.run_next()


def child_main(settings_data: dict[str, object], models: list[str] | None) -> None:
    """Entry point of a worker process."""
    settings = Settings.model_validate(settings_data)
    configure_logging(settings.log_level)
    services = build_services(settings)
    runner = Runner(services, models=models)

    def _drain(signum: int, _frame: object) -> None:
        log.info("worker %s draining (signal %d)", runner.worker_id, signum)
        runner.stop(drain=True)

    signal.signal(signal.SIGTERM, _drain)
    signal.signal(signal.SIGINT, _drain)
    try:
        serve(runner)
    finally:
        services.close()
