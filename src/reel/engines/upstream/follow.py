"""Following one upstream job to its end: poll, report progress, time out, cancel, fetch."""

from __future__ import annotations

import logging
import time

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from reel.engines.base import EngineError, EngineOutput, Interrupted
from reel.engines.upstream.client import CallFailed, call_retrying
from reel.engines.upstream.messages import (
    BAD_VIDEO,
    DOWNLOAD,
    JOB_FAILED,
    LOST,
    NO_VIDEO,
    TIMED_OUT,
)
from reel.engines.upstream.providers.base import Job, NoResult, Poll
from reel.engines.upstream.results import DownloadFailed, download
from reel.engines.upstream.state import RunState, Upstream
from reel.media.video import VideoError, probe
from reel.types import Stage

log = logging.getLogger("reel.engines.upstream")


class JobRun:
    """One job on one upstream, within a :class:`RunState`."""

    def __init__(
        self,
        task: RunState,
        up: Upstream,
        job: Job,
        endpoint: str,
        since: float,
        *,
        webhook: bool = False,
    ):
        self.task = task
        self.up = up
        self.job = job
        self.endpoint = endpoint
        #: Wall-clock time the job was submitted (for the total time recorded).
        self.since = since
        #: The job was submitted with Reel's callback link: poll when it calls, else seldom.
        self.webhook = webhook
        self._tag = f"task {task.req.task_id}: upstream {up.spec.name} job {job.id}"

    def run(self) -> EngineOutput | None:
        """The finished video, or ``None`` once the job is known to be stopped (try elsewhere).

        Raises :class:`EngineError` when the task must fail, ``Interrupted`` when it must stop.
        """
        task, up, job = self.task, self.up, self.job
        state = {"upstream": up.spec.name, "server": job.server, "phase": "submitted"}
        try:
            task.checkpoint(
                {
                    **state,
                    "since": self.since,
                    "job": job.to_state(),
                    "endpoint": self.endpoint,
                    "webhook": self.webhook,
                }
            )
        except Exception:  # the job could not be handed over (lease lost, database error)
            self.cancel()
            raise
        try:
            output = self._follow()
        except Interrupted as stop:
            if stop.reason == "canceled" or task.req.checkpoint is None:
                self.cancel()
            else:  # draining or reaped: the job goes on; the next attempt resumes it
                log.info("%s: left running for the next attempt (%s)", self._tag, stop.reason)
            raise
        except EngineError:
            raise
        except Exception:  # a surprise here must not leave a job running (and billed) upstream
            log.exception("%s: unexpected error; canceling upstream", self._tag)
            self.cancel()
            raise
        if output is None:
            up.health.failure(job.server)
            task.failed_servers.add(job.server)
            task.checkpoint({})
        return output

    def cancel(self) -> None:
        outcome = self.up.provider.cancel(self.up.client, self.job)
        self.task.note(
            self.up, self.job.server, "canceled_upstream", request_id=self.job.id, cancel=outcome
        )
        log.info("%s: canceled upstream (%s)", self._tag, outcome)

    def _poll(self) -> Poll:
        return call_retrying(self.up.spec, self.task.wait)(
            self.up.provider.poll, self.up.client, self.job
        )

    def _follow(self) -> EngineOutput | None:
        task, spec = self.task, self.up.spec
        clock = task.clock
        job_deadline = min(task.deadline, clock() + spec.timeout)
        started = clock()
        running_since: float | None = None
        last: Poll | None = None
        while True:
            try:
                poll = self._poll()
            except CallFailed as exc:
                log.warning("%s: %s", self._tag, exc.detail)
                return self._abandon(last, "lost")
            if poll.phase == "running" and running_since is None:
                running_since = clock()
            self._report(poll, running_since)
            if poll.phase == "succeeded":
                timing = {"queued": (running_since or clock()) - started}
                if running_since is not None:
                    timing["running"] = clock() - running_since
                return self._finish(poll, timing)
            if poll.phase == "failed":
                log.warning("%s failed upstream: %s", self._tag, poll.error)
                task.note(self.up, self.job.server, "job_failed", request_id=self.job.id)
                raise EngineError(JOB_FAILED)
            if poll.phase in ("canceled", "gone"):
                log.warning("%s is %s upstream", self._tag, poll.phase)
                task.note(self.up, self.job.server, f"job_{poll.phase}", request_id=self.job.id)
                return None
            if clock() >= job_deadline:
                return self._abandon(poll, "timeout")
            last = poll
            if self.webhook:
                remaining = max(0.0, job_deadline - clock())
                task.wait(min(spec.webhook_poll_interval, remaining), woken=task.req.woken)
            else:
                task.wait(spec.poll_interval)

    def _abandon(self, last: Poll | None, why: str) -> EngineOutput | None:
        """Cancel a job that timed out or went silent; ``None`` once it is known to be stopped.

        Stopped means the upstream shows it canceled, gone or failed after the cancel, or it
        accepted the cancel of a job that was still queued. Anything less fails the task, so
        that it never runs on two upstreams at once.
        """
        up, job = self.up, self.job
        outcome = up.provider.cancel(up.client, job)
        try:
            after: Poll | None = up.provider.poll(up.client, job)
        except CallFailed:
            after = None
        if after is not None and after.phase == "succeeded":
            return self._finish(after, {})
        stopped = (after is not None and after.phase in ("canceled", "gone", "failed")) or (
            after is None and outcome == "canceled" and last is not None and last.phase == "queued"
        )
        self.task.note(
            up, job.server, f"{why}_{'canceled' if stopped else 'uncertain'}", request_id=job.id
        )
        if stopped:
            log.warning("%s canceled after %s; trying the next upstream", self._tag, why)
            return None
        log.error(
            "%s (%s) could not be confirmed stopped (cancel: %s); failing the task instead of "
            "trying elsewhere",
            self._tag,
            why,
            outcome,
        )
        raise EngineError(TIMED_OUT if why == "timeout" else LOST)

    def _report(self, poll: Poll, running_since: float | None) -> None:
        if poll.phase == "queued":
            position = poll.queue_position
            percent = 2.0 if position is None else max(0.5, 4.0 - min(position, 7) * 0.5)
            self.task.report(Stage.QUEUED, percent)
        elif poll.phase == "running":
            done = poll.percent
            if done is None:
                elapsed = self.task.clock() - (running_since or self.task.clock())
                done = min(90.0, 100.0 * elapsed / self.up.spec.expected_seconds)
            self.task.report(Stage.GENERATING, 5.0 + 0.9 * max(0.0, min(100.0, done)))

    # --- the result ----------------------------------------------------------------------------
    def _finish(self, poll: Poll, timing: dict[str, float]) -> EngineOutput:
        task, up, job = self.task, self.up, self.job
        task.report(Stage.STORING, 96.0)
        fetch_started = task.clock()
        latest = [poll]

        def fetch() -> int:
            url = call_retrying(up.spec, task.wait)(
                up.provider.result_url, up.client, job, latest[0]
            )
            return download(
                up.client,
                url,
                task.req.output_path,
                policy=task.engine.download_policy,
                resolver=task.engine.resolver,
            )

        def before_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, DownloadFailed):
                log.warning("%s: download: %s; trying once more", self._tag, exc.detail)
                if exc.expired:  # the link expired: ask the upstream for a fresh one
                    latest[0] = self._poll()

        try:
            size = Retrying(
                retry=retry_if_exception_type(DownloadFailed),
                stop=stop_after_attempt(2),
                before_sleep=before_retry,
                sleep=task.wait,
                reraise=True,
            )(fetch)
        except NoResult as exc:
            log.warning("%s: %s", self._tag, exc.detail)
            raise EngineError(NO_VIDEO) from None
        except (CallFailed, DownloadFailed) as exc:
            log.warning("%s: the result could not be fetched: %s", self._tag, exc.detail)
            raise EngineError(DOWNLOAD) from None
        poll = latest[0]
        try:
            info = probe(task.req.output_path)
        except VideoError as exc:
            log.warning("%s: %s", self._tag, exc)
            raise EngineError(BAD_VIDEO) from None
        if up.spec.sound and not info.has_audio:
            log.warning("%s: asked for sound, but the video has no audio track", self._tag)
        timing["download"] = task.clock() - fetch_started
        timing["total"] = time.time() - self.since
        task.note(up, job.server, "completed", request_id=job.id)
        meta: dict[str, object] = {
            "engine": task.engine.name,
            "name": up.spec.name,
            "kind": up.spec.kind,
            "server": job.server,
            "endpoint": self.endpoint,
            "request_id": job.id,
            "resumed": task.resumed,
            "seconds": {k: round(v, 3) for k, v in timing.items()},
            "metrics": dict(poll.metrics),
            "bytes": size,
            "audio": info.has_audio,
            "attempts": task.trail,
        }
        cost = self._cost(poll, timing, info.duration_s)
        if cost is not None:
            meta["cost"] = cost
        return EngineOutput(
            path=task.req.output_path,
            width=info.width,
            height=info.height,
            fps=info.fps,
            frames=info.frames,
            metadata={"upstream": meta},
        )

    def _cost(
        self, poll: Poll, timing: dict[str, float], video_s: float
    ) -> dict[str, object] | None:
        """What the run cost upstream: as reported, else estimated from the configured price."""
        price = self.up.spec.price
        if "cost" in poll.metrics:
            return {
                "amount": poll.metrics["cost"],
                "currency": price.currency,
                "source": "reported",
            }
        if not (price.per_run or price.per_second or price.per_video_second):
            return None
        run_s = poll.metrics.get(
            "predict_time", poll.metrics.get("inference_time", timing.get("running", 0.0))
        )
        amount = price.per_run + price.per_second * run_s + price.per_video_second * video_s
        return {"amount": round(amount, 6), "currency": price.currency, "source": "estimate"}
