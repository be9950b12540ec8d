"""fal.ai queue API (https://queue.fal.run).

Submit ``POST /{app id}`` → ``{request_id, status_url, response_url, cancel_url}``; status
``GET /{owner}/{app}/requests/{id}/status?logs=1`` → ``{status: IN_QUEUE | IN_PROGRESS |
COMPLETED, queue_position, logs, metrics, error?}``; result ``GET …/requests/{id}``; cancel
``PUT …/requests/{id}/cancel`` → ``CANCELLATION_REQUESTED`` or ``ALREADY_COMPLETED``. Status,
result and cancel live under the app root, without the endpoint path (``fal-ai/wan``, not
``fal-ai/wan/v2.2-a14b/text-to-video``); the URLs the submit answer carries are used when they
point at the configured server. fal keeps no job list, so a lost submission cannot be looked up.
With ``?fal_webhook=URL`` fal POSTs to that URL when the request ends; Reel uses it only as a
signal to poll now (the payload is never trusted).
"""

from __future__ import annotations

from reel.engines.upstream.client import CallFailed, OutcomeUnknown, UpstreamClient
from reel.engines.upstream.providers.base import (
    CancelOutcome,
    Job,
    NoResult,
    NotSupported,
    Poll,
    Submission,
    dig,
    job_urls,
    metrics_of,
    number,
    percent_from_logs,
    video_url,
)

_PHASES = {
    "IN_QUEUE": "queued",
    "IN_PROGRESS": "running",
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "ERROR": "failed",
    "CANCELED": "canceled",
    "CANCELLED": "canceled",
}


def _app_root(endpoint: str) -> str:
    return "/".join(endpoint.strip("/").split("/")[:2])


class FalProvider:
    probes_load = False

    def submit(self, client: UpstreamClient, server: str, sub: Submission) -> Job:
        params = {"fal_webhook": sub.callback_url} if sub.callback_url else None
        data = client.submit(
            "POST", f"{server}/{sub.endpoint.strip('/')}", json=dict(sub.input), params=params
        )
        request_id = data.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise OutcomeUnknown(client.scrub(f"fal submit answer without request_id: {data}"))
        root = f"{server}/{_app_root(sub.endpoint)}/requests/{request_id}"
        built = {"status": f"{root}/status", "result": root, "cancel": f"{root}/cancel"}
        keys = {"status": "status_url", "result": "response_url", "cancel": "cancel_url"}
        return Job(request_id, server, job_urls(data, keys, built, server))

    def poll(self, client: UpstreamClient, job: Job) -> Poll:
        response = client.call("GET", job.urls["status"], params={"logs": "1"}, ok=(404,))
        if response.status_code == 404:
            return Poll("gone")
        try:
            data = response.json()
            status = data["status"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CallFailed(client.scrub(f"fal status is malformed: {response.text}")) from exc
        phase = _PHASES.get(str(status))
        if phase is None:
            raise CallFailed(client.scrub(f"fal status {status!r} is unknown"))
        error = data.get("error")
        if phase == "succeeded" and error:
            phase = "failed"
        logs = data.get("logs") or []
        lines = [str(e.get("message", "")) for e in logs if isinstance(e, dict)]
        position = number(data.get("queue_position"))
        return Poll(
            phase,  # type: ignore[arg-type]
            percent=percent_from_logs(lines) if phase == "running" else None,
            queue_position=int(position) if position is not None else None,
            error=str(error) if error else None,
            metrics=metrics_of(data.get("metrics"), "inference_time"),
        )

    def result_url(self, client: UpstreamClient, job: Job, _last: Poll) -> str:
        try:
            data = client.call_json("GET", job.urls["result"])
        except CallFailed as exc:
            if exc.transient:
                raise
            raise NoResult(exc.detail) from exc
        url = video_url(dig(data, client.spec.result_path))
        if url is None:
            raise NoResult(client.scrub(f"no video at {client.spec.result_path!r} in {data}"))
        return url

    def cancel(self, client: UpstreamClient, job: Job) -> CancelOutcome:
        try:
            response = client.call("PUT", job.urls["cancel"], ok=(400, 404, 409))
        except CallFailed:
            return "unknown"
        try:
            status = str(response.json().get("status", ""))
        except (ValueError, AttributeError):
            status = ""
        if status == "ALREADY_COMPLETED":
            return "finished"
        if response.is_success or response.status_code == 404 or status == "NOT_FOUND":
            return "canceled"
        return "unknown"

    def find(
        self, _client: UpstreamClient, _server: str, _sub: Submission, _since: float
    ) -> Job | None:
        raise NotSupported("fal keeps no list of requests")

    def active_jobs(self, _client: UpstreamClient, _server: str) -> int:
        raise NotSupported("fal scales its own runners")
