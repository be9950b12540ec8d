"""One task through the upstreams: failover, polling, progress, cancel, resume, download.

The rules (docs/upstreams.md explains them for operators):

- Upstreams are tried in the order listed; servers of a pool by load. An upstream whose servers
  are all busy, rate-limited (429 + ``Retry-After``) or behind an open circuit breaker is
  passed over; when none can take the task now, the task waits for the earliest one.
- A submission that certainly created nothing (connection refused, 4xx/5xx) moves on. One whose
  answer was lost is first looked up in the upstream's job list; if it cannot be looked up, the
  task fails (and is refunded) rather than risk running twice.
- A job that runs past its ``timeout`` or stops answering is canceled upstream; only once it is
  known to be stopped does the task move on, so it never runs on two upstreams at once.
- An upstream that reports the job failed fails the task (GENERATION_FAILED, refunded).
- A cancel by the user is sent upstream. A draining or reaped worker leaves the job running: the
  job is saved on the task (``checkpoint``) and the next attempt picks it up (``resume``).
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from reel.engines.base import (
    EngineError,
    EngineOutput,
    GenerationRequest,
    Interrupted,
    ProgressSink,
)
from reel.engines.upstream.client import (
    CallFailed,
    NothingCreated,
    OutcomeUnknown,
    RateLimited,
    call_retrying,
    submit_retrying,
)
from reel.engines.upstream.mapping import MappingError, render, variables
from reel.engines.upstream.pool import choose_server
from reel.engines.upstream.providers.base import Job, NoResult, NotSupported, Poll, Submission
from reel.engines.upstream.results import DownloadFailed, download
from reel.media.video import VideoError, probe
from reel.types import Mode, Stage

if TYPE_CHECKING:
    from reel.engines.upstream.engine import Upstream, UpstreamEngine

log = logging.getLogger("reel.engines.upstream")

# What users read. Upstream details stay in the operator's logs.
NO_UPSTREAM: Final = "No video provider could take this task right now"
NOT_CONFIGURED: Final = "This model's video providers are not configured for this request"
JOB_FAILED: Final = "The video provider could not generate this video"
TIMED_OUT: Final = "The video provider did not finish in time"
LOST: Final = "The video provider stopped answering"
UNCERTAIN: Final = (
    "The video provider did not confirm the request; it was not retried elsewhere "
    "so that it cannot run twice"
)
NO_VIDEO: Final = "The video provider finished without a video"
DOWNLOAD: Final = "The finished video could not be downloaded from the video provider"
BAD_VIDEO: Final = "The video provider returned a file that is not a playable video"

_SLICE: Final = 1.0  # longest sleep between progress calls, so a cancel is seen within ~1 s
_LOOKUPS: Final = 3


@dataclass(frozen=True, slots=True)
class _Later:
    """The upstream cannot take the task now; it may at clock time ``until``."""

    until: float


class _ConfigProblem(Exception):
    pass


class TaskRun:
    def __init__(self, engine: UpstreamEngine, req: GenerationRequest, progress: ProgressSink):
        self.engine = engine
        self.req = req
        self.progress = progress
        self.clock = engine.clock
        settings = engine.settings
        budget = settings.task_time_limit - settings.upstream_download_timeout - 30
        self.deadline = self.clock() + max(60.0, budget)
        self.trail: list[dict[str, object]] = []
        self.failed_servers: set[str] = set()
        self.config_problems = 0
        self.resumed = False
        self._stage, self._percent = Stage.QUEUED, 0.0

    # --- the failover loop ---------------------------------------------------------------------
    def execute(self) -> EngineOutput:
        output = self._resume()
        if output is not None:
            return output
        eligible = [u for u in self.engine.upstreams if self.req.mode in u.spec.modes]
        if not eligible:
            log.error(
                "task %s: no upstream of %s serves %s",
                self.req.task_id,
                self.engine.name,
                self.req.mode,
            )
            raise EngineError(NOT_CONFIGURED)
        while True:
            waits: list[float] = []
            for up in eligible:
                if self._spent(up):
                    continue
                result = self._attempt(up)
                if isinstance(result, EngineOutput):
                    return result
                if isinstance(result, _Later):
                    waits.append(result.until)
            if not waits:
                raise EngineError(
                    NOT_CONFIGURED if self.config_problems == len(eligible) else NO_UPSTREAM
                )
            until = min(waits)
            if until > self.deadline:
                raise EngineError(NO_UPSTREAM)
            self._wait(until - self.clock())

    def _spent(self, up: Upstream) -> bool:
        return all(server in self.failed_servers for server in up.spec.pool)

    def _give_up_on(self, up: Upstream) -> None:
        self.failed_servers.update(up.spec.pool)

    def _attempt(self, up: Upstream) -> EngineOutput | _Later | None:
        spec = up.spec
        if up.unusable:
            self.config_problems += 1
            self._give_up_on(up)
            return None
        choice = choose_server(
            up.client, up.provider, up.health, exclude=self.failed_servers, rng=self.engine.rng
        )
        if choice.server is None:
            if choice.busy:
                return _Later(self.clock() + spec.poll_interval)
            chances = [up.health.next_chance(s) for s in spec.pool if s not in self.failed_servers]
            return _Later(min(chances)) if chances else None
        server = choice.server
        try:
            sub = self._submission(up)
        except _ConfigProblem as exc:
            log.error("task %s: upstream %s skipped: %s", self.req.task_id, spec.name, exc)
            self.config_problems += 1
            self._give_up_on(up)
            return None
        since = time.time()
        self._checkpoint(
            {"upstream": spec.name, "server": server, "phase": "submitting", "since": since}
        )
        try:
            job = submit_retrying(spec, self._sleep)(up.provider.submit, up.client, server, sub)
        except RateLimited as exc:
            up.health.defer(server, exc.retry_after)
            self._note(up, server, "rate_limited", retry_after=exc.retry_after)
            return _Later(self.clock() + exc.retry_after)
        except NothingCreated as exc:
            log.warning(
                "task %s: upstream %s refused the job: %s", self.req.task_id, spec.name, exc.detail
            )
            up.health.failure(server)
            self.failed_servers.add(server)
            self._note(up, server, "submit_failed", status=exc.status)
            return None
        except OutcomeUnknown as exc:
            log.warning(
                "task %s: upstream %s: submission outcome unknown: %s",
                self.req.task_id,
                spec.name,
                exc.detail,
            )
            found = self._find_lost(up, server, sub, since)
            if found is None:
                up.health.failure(server)
                self.failed_servers.add(server)
                self._note(up, server, "submit_lost")
                return None
            job = found
        up.health.success(server)
        log.info("task %s: upstream %s job %s on %s", self.req.task_id, spec.name, job.id, server)
        return self._run_job(up, job, sub.endpoint, since)

    def _submission(self, up: Upstream) -> Submission:
        spec, req = up.spec, self.req
        image_url: str | None = None
        png: bytes | None = None
        if req.mode == Mode.IMAGE_TO_VIDEO:
            if req.image_path is None:
                raise _ConfigProblem("the task has no start image")
            if spec.image == "url":
                if not req.image_url:
                    raise _ConfigProblem("start images go by URL, which needs REEL_PUBLIC_URL")
                image_url = req.image_url
            elif spec.image == "data_uri":
                encoded = base64.b64encode(req.image_path.read_bytes()).decode("ascii")
                image_url = f"data:image/png;base64,{encoded}"
            else:
                png = req.image_path.read_bytes()
        try:
            body = render(spec.input, variables(req, fps=spec.fps, image_url=image_url))
        except MappingError as exc:
            raise _ConfigProblem(exc.message) from exc
        return Submission(req.mode, spec.endpoint_for(req.mode), body, png, req.prompt)

    def _find_lost(self, up: Upstream, server: str, sub: Submission, since: float) -> Job | None:
        """The job a lost submission created; ``None`` if none appeared within the grace time.

        A server that did not answer may still be working through the request, so the list is
        read until twice the request timeout has passed (and at least three times) before the
        submission counts as having created nothing.
        """
        if not up.spec.lookup:
            raise EngineError(UNCERTAIN)
        grace_end = self.clock() + 2 * up.spec.request_timeout
        lookups = 0
        try:
            while True:
                job = call_retrying(up.spec, self._sleep)(
                    up.provider.find, up.client, server, sub, since
                )
                lookups += 1
                if job is not None:
                    self._note(up, server, "found_after_lost_submission", request_id=job.id)
                    return job
                if lookups >= _LOOKUPS and self.clock() >= grace_end:
                    return None
                self._wait(up.spec.poll_interval)
        except (NotSupported, CallFailed) as exc:
            log.error(
                "task %s: upstream %s may hold a job for it, which cannot be looked up (%s); "
                "failing the task instead of trying elsewhere",
                self.req.task_id,
                up.spec.name,
                getattr(exc, "detail", exc),
            )
            raise EngineError(UNCERTAIN) from None

    # --- one job -------------------------------------------------------------------------------
    def _run_job(self, up: Upstream, job: Job, endpoint: str, since: float) -> EngineOutput | None:
        state = {
            "upstream": up.spec.name,
            "server": job.server,
            "phase": "submitted",
            "since": since,
        }
        try:
            self._checkpoint({**state, "job": job.to_state(), "endpoint": endpoint})
            output = self._follow(up, job, endpoint, since)
        except Interrupted as stop:
            if stop.reason == "canceled" or not self.req.checkpoint:
                self._cancel_quietly(up, job)
            else:  # draining or reaped: the job goes on; the next attempt resumes it
                log.info(
                    "task %s: leaving upstream job %s running for the next attempt",
                    self.req.task_id,
                    job.id,
                )
            raise
        if output is None:  # the job is known to be stopped: free to try elsewhere
            up.health.failure(job.server)
            self.failed_servers.add(job.server)
            self._checkpoint({})
        return output

    def _follow(self, up: Upstream, job: Job, endpoint: str, since: float) -> EngineOutput | None:
        spec = up.spec
        job_deadline = min(self.deadline, self.clock() + spec.timeout)
        started = self.clock()
        running_since: float | None = None
        last: Poll | None = None
        while True:
            try:
                poll = call_retrying(spec, self._sleep)(up.provider.poll, up.client, job)
            except CallFailed as exc:
                log.warning(
                    "task %s: upstream %s job %s: %s",
                    self.req.task_id,
                    spec.name,
                    job.id,
                    exc.detail,
                )
                return self._abandon(up, job, endpoint, since, last, "lost")
            if poll.phase == "running" and running_since is None:
                running_since = self.clock()
            self._report(up, poll, running_since)
            if poll.phase == "succeeded":
                timing = {"queued": (running_since or self.clock()) - started}
                if running_since is not None:
                    timing["running"] = self.clock() - running_since
                return self._finish(up, job, endpoint, since, poll, timing)
            if poll.phase == "failed":
                log.warning(
                    "task %s: upstream %s job %s failed: %s",
                    self.req.task_id,
                    spec.name,
                    job.id,
                    poll.error,
                )
                self._note(up, job.server, "job_failed", request_id=job.id)
                raise EngineError(JOB_FAILED)
            if poll.phase in ("canceled", "gone"):
                log.warning(
                    "task %s: upstream %s job %s is %s",
                    self.req.task_id,
                    spec.name,
                    job.id,
                    poll.phase,
                )
                self._note(up, job.server, f"job_{poll.phase}", request_id=job.id)
                return None
            if self.clock() >= job_deadline:
                return self._abandon(up, job, endpoint, since, poll, "timeout")
            last = poll
            self._wait(spec.poll_interval)

    def _abandon(
        self, up: Upstream, job: Job, endpoint: str, since: float, last: Poll | None, why: str
    ) -> EngineOutput | None:
        """Cancel a job that timed out or went silent. ``None`` once it is known to be stopped."""
        outcome = up.provider.cancel(up.client, job)
        try:
            after: Poll | None = up.provider.poll(up.client, job)
        except CallFailed:
            after = None
        if after is not None and after.phase == "succeeded":
            return self._finish(up, job, endpoint, since, after, {})
        stopped = (after is not None and after.phase in ("canceled", "gone", "failed")) or (
            after is None and outcome == "canceled" and last is not None and last.phase == "queued"
        )
        self._note(
            up, job.server, f"{why}_{'canceled' if stopped else 'uncertain'}", request_id=job.id
        )
        if stopped:
            log.warning(
                "task %s: upstream %s job %s canceled after %s; trying the next",
                self.req.task_id,
                up.spec.name,
                job.id,
                why,
            )
            return None
        log.error(
            "task %s: upstream %s job %s (%s) could not be confirmed stopped (cancel: %s); "
            "failing the task instead of trying elsewhere",
            self.req.task_id,
            up.spec.name,
            job.id,
            why,
            outcome,
        )
        raise EngineError(TIMED_OUT if why == "timeout" else LOST)

    def _cancel_quietly(self, up: Upstream, job: Job) -> None:
        outcome = up.provider.cancel(up.client, job)
        self._note(up, job.server, "canceled_upstream", request_id=job.id, cancel=outcome)
        log.info(
            "task %s: canceled upstream job %s on %s: %s",
            self.req.task_id,
            job.id,
            up.spec.name,
            outcome,
        )

    # --- the result ----------------------------------------------------------------------------
    def _finish(
        self,
        up: Upstream,
        job: Job,
        endpoint: str,
        since: float,
        poll: Poll,
        timing: dict[str, float],
    ) -> EngineOutput:
        self.progress(Stage.STORING, 96.0)
        fetch_started = self.clock()
        size = 0
        for attempt in (1, 2):
            try:
                url = call_retrying(up.spec, self._sleep)(
                    up.provider.result_url, up.client, job, poll
                )
                size = download(
                    up.client,
                    url,
                    self.req.output_path,
                    policy=self.engine.download_policy,
                    resolver=self.engine.resolver,
                )
                break
            except NoResult as exc:
                log.warning(
                    "task %s: upstream %s job %s: %s",
                    self.req.task_id,
                    up.spec.name,
                    job.id,
                    exc.detail,
                )
                raise EngineError(NO_VIDEO) from None
            except CallFailed as exc:
                log.warning(
                    "task %s: upstream %s job %s result: %s",
                    self.req.task_id,
                    up.spec.name,
                    job.id,
                    exc.detail,
                )
                raise EngineError(DOWNLOAD) from None
            except DownloadFailed as exc:
                log.warning(
                    "task %s: upstream %s job %s download: %s",
                    self.req.task_id,
                    up.spec.name,
                    job.id,
                    exc.detail,
                )
                if not exc.expired or attempt == 2:
                    raise EngineError(DOWNLOAD) from None
                try:  # the link expired: ask the upstream again for a fresh one
                    poll = call_retrying(up.spec, self._sleep)(up.provider.poll, up.client, job)
                except CallFailed:
                    raise EngineError(DOWNLOAD) from None
        try:
            info = probe(self.req.output_path)
        except VideoError as exc:
            log.warning(
                "task %s: upstream %s job %s: %s", self.req.task_id, up.spec.name, job.id, exc
            )
            raise EngineError(BAD_VIDEO) from None
        timing["download"] = self.clock() - fetch_started
        timing["total"] = time.time() - since
        self._note(up, job.server, "completed", request_id=job.id)
        meta: dict[str, object] = {
            "engine": self.engine.name,
            "name": up.spec.name,
            "kind": up.spec.kind,
            "server": job.server,
            "endpoint": endpoint,
            "request_id": job.id,
            "resumed": self.resumed,
            "seconds": {k: round(v, 3) for k, v in timing.items()},
            "metrics": dict(poll.metrics),
            "bytes": size,
            "attempts": self.trail,
        }
        cost = self._cost(up, poll, timing, info.duration_s)
        if cost is not None:
            meta["cost"] = cost
        return EngineOutput(
            path=self.req.output_path,
            width=info.width,
            height=info.height,
            fps=info.fps,
            frames=info.frames,
            metadata={"upstream": meta},
        )

    def _cost(
        self, up: Upstream, poll: Poll, timing: dict[str, float], video_s: float
    ) -> dict[str, object] | None:
        price = up.spec.price
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

    # --- resuming a job an earlier attempt started -----------------------------------------------
    def _resume(self) -> EngineOutput | None:
        state = self.req.resume
        if not state:
            return None
        up = next((u for u in self.engine.upstreams if u.spec.name == state.get("upstream")), None)
        if up is None:
            log.warning(
                "task %s: saved state names upstream %r, no longer configured; starting afresh",
                self.req.task_id,
                state.get("upstream"),
            )
            return None
        since_raw = state.get("since")
        since = float(since_raw) if isinstance(since_raw, int | float) else time.time()
        raw_job = state.get("job")
        job = Job.from_state(raw_job) if isinstance(raw_job, dict) else None
        endpoint = str(state.get("endpoint") or up.spec.endpoint_for(self.req.mode))
        server = state.get("server")
        if job is None and state.get("phase") == "submitting" and isinstance(server, str):
            try:
                sub = self._submission(up)
            except _ConfigProblem:
                return None
            log.warning(
                "task %s: an earlier attempt stopped while submitting to %s; looking for its job",
                self.req.task_id,
                up.spec.name,
            )
            job = self._find_lost(up, server, sub, since)
        if job is None:
            return None
        self.resumed = True
        self._note(up, job.server, "resumed", request_id=job.id)
        log.info("task %s: resuming upstream %s job %s", self.req.task_id, up.spec.name, job.id)
        return self._run_job(up, job, endpoint, since)

    # --- progress, waiting, notes --------------------------------------------------------------
    def _report(self, up: Upstream, poll: Poll, running_since: float | None) -> None:
        if poll.phase == "queued":
            position = poll.queue_position
            stage, percent = (
                Stage.QUEUED,
                2.0 if position is None else max(0.5, 4.0 - min(position, 7) * 0.5),
            )
        elif poll.phase == "running":
            done = poll.percent
            if done is None:
                elapsed = self.clock() - (running_since or self.clock())
                done = min(90.0, 100.0 * elapsed / up.spec.expected_seconds)
            stage, percent = Stage.GENERATING, 5.0 + 0.9 * max(0.0, min(100.0, done))
        else:
            return
        self._stage, self._percent = stage, percent
        self.progress(stage, percent)

    def _wait(self, seconds: float) -> None:
        """Sleep, telling the sink every second so that a cancel or drain stops us promptly."""
        end = self.clock() + max(0.0, seconds)
        while True:
            self.progress(self._stage, self._percent)
            remaining = end - self.clock()
            if remaining <= 0:
                return
            self.engine.sleep(min(_SLICE, remaining))

    def _sleep(self, seconds: float) -> None:
        self._wait(seconds)

    def _checkpoint(self, state: dict[str, object]) -> None:
        if self.req.checkpoint is not None:
            self.req.checkpoint(state)

    def _note(self, up: Upstream, server: str, outcome: str, **facts: object) -> None:
        self.trail.append({"upstream": up.spec.name, "server": server, "outcome": outcome, **facts})
