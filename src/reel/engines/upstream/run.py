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
from typing import Final

from tenacity import Retrying, retry_if_result, stop_after_attempt, stop_after_delay, wait_fixed

from reel.engines.base import EngineError, EngineOutput
from reel.engines.upstream.client import (
    CallFailed,
    NothingCreated,
    OutcomeUnknown,
    RateLimited,
    call_retrying,
    submit_retrying,
)
from reel.engines.upstream.follow import JobRun
from reel.engines.upstream.mapping import MappingError, render, variables
from reel.engines.upstream.messages import NO_UPSTREAM, NOT_CONFIGURED, UNCERTAIN
from reel.engines.upstream.pool import choose_server
from reel.engines.upstream.providers.base import Job, NotSupported, Submission
from reel.engines.upstream.state import RunState, Upstream
from reel.types import Mode

log = logging.getLogger("reel.engines.upstream")

_LOOKUPS: Final = 3


@dataclass(frozen=True, slots=True)
class _Later:
    """The upstream cannot take the task now; it may at clock time ``until``."""

    until: float


class _ConfigProblem(Exception):
    pass


class TaskRun(RunState):
    """The failover loop of one task; :class:`RunState` holds what its job runs share."""

    # --- the failover loop ---------------------------------------------------------------------
    def execute(self) -> EngineOutput:
        output = self._resume()
        if output is not None:
            return output
        eligible = [
            u for u in self.engine.upstreams if u.spec.makes(self.req.mode, self.req.duration_s)
        ]
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
            self.wait(until - self.clock())

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
        self.checkpoint(
            {"upstream": spec.name, "server": server, "phase": "submitting", "since": since}
        )
        try:
            job = submit_retrying(spec, self.wait)(up.provider.submit, up.client, server, sub)
        except RateLimited as exc:
            self.checkpoint({})  # nothing was created
            up.health.defer(server, exc.retry_after)
            self.note(up, server, "rate_limited", retry_after=exc.retry_after)
            return _Later(self.clock() + exc.retry_after)
        except NothingCreated as exc:
            self.checkpoint({})
            log.warning(
                "task %s: upstream %s refused the job: %s", self.req.task_id, spec.name, exc.detail
            )
            up.health.failure(server)
            self.failed_servers.add(server)
            self.note(up, server, "submit_failed", status=exc.status)
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
                self.checkpoint({})
                up.health.failure(server)
                self.failed_servers.add(server)
                self.note(up, server, "submit_lost")
                return None
            job = found
        up.health.success(server)
        log.info("task %s: upstream %s job %s on %s", self.req.task_id, spec.name, job.id, server)
        return JobRun(self, up, job, sub.endpoint, since, webhook=bool(sub.callback_url)).run()

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
        callback = req.callback_url if spec.webhook and req.woken is not None else None
        return Submission(req.mode, spec.endpoint_for(req.mode), body, png, req.prompt, callback)

    def _find_lost(self, up: Upstream, server: str, sub: Submission, since: float) -> Job | None:
        """The job a lost submission created; ``None`` if none appeared within the grace time.

        A server that did not answer may still be working through the request, so the list is
        read at least three times and until twice the request timeout has passed before the
        submission counts as having created nothing.
        """
        if not up.spec.lookup:
            raise EngineError(UNCERTAIN)
        find = call_retrying(up.spec, self.wait)
        try:
            job: Job | None = Retrying(
                retry=retry_if_result(lambda found: found is None),
                stop=stop_after_attempt(_LOOKUPS) & stop_after_delay(2 * up.spec.request_timeout),
                wait=wait_fixed(up.spec.poll_interval),
                sleep=self.wait,
                retry_error_callback=lambda _: None,
            )(find, up.provider.find, up.client, server, sub, since)
        except (NotSupported, CallFailed) as exc:
            log.error(
                "task %s: upstream %s may hold a job for it, which cannot be looked up (%s); "
                "failing the task instead of trying elsewhere",
                self.req.task_id,
                up.spec.name,
                getattr(exc, "detail", exc),
            )
            raise EngineError(UNCERTAIN) from None
        if job is not None:
            self.note(up, server, "found_after_lost_submission", request_id=job.id)
        return job

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
        self.note(up, job.server, "resumed", request_id=job.id)
        log.info("task %s: resuming upstream %s job %s", self.req.task_id, up.spec.name, job.id)
        webhook = state.get("webhook") is True and self.req.woken is not None
        return JobRun(self, up, job, endpoint, since, webhook=webhook).run()
