"""Replicate predictions API (https://api.replicate.com/v1).

Create: ``POST /v1/models/{owner}/{name}/predictions`` (official models),
``POST /v1/predictions`` with ``version`` (``owner/name:version`` or a version id), or
``POST /v1/deployments/{owner}/{name}/predictions`` (``deployments/owner/name``); body
``{"input": {...}}``; optional ``Prefer: wait=N``. The prediction object:
``{id, status: starting | processing | succeeded | failed | canceled, output, error, logs,
metrics: {predict_time}, urls: {get, cancel}, created_at}``. Cancel: ``POST
/v1/predictions/{id}/cancel``. A lost create is found again in ``GET /v1/predictions``
(newest first) by its exact input and creation time.
"""

from __future__ import annotations

from datetime import datetime

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
    percent_from_logs,
    video_url,
)

_PHASES = {
    "starting": "queued",
    "processing": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "aborted": "failed",
    "canceled": "canceled",
}
#: Clock skew tolerated when matching a lost create by its ``created_at``.
_SKEW = 120.0


def _target(endpoint: str) -> tuple[str, dict[str, object]]:
    """The create path and extra body fields for an ``endpoint`` spelling."""
    endpoint = endpoint.strip("/")
    if endpoint.startswith("deployments/"):
        return f"/v1/{endpoint}/predictions", {}
    if ":" in endpoint:
        return "/v1/predictions", {"version": endpoint.rsplit(":", 1)[1]}
    if "/" not in endpoint:  # a bare version id
        return "/v1/predictions", {"version": endpoint}
    return f"/v1/models/{endpoint}/predictions", {}


def _job(client: UpstreamClient, server: str, data: dict[str, object]) -> Job:
    job_id = data.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise OutcomeUnknown(client.scrub(f"Replicate answer without id: {data}"))
    built = {
        "get": f"{server}/v1/predictions/{job_id}",
        "cancel": f"{server}/v1/predictions/{job_id}/cancel",
    }
    return Job(
        job_id, server, job_urls(data, {"get": "urls.get", "cancel": "urls.cancel"}, built, server)
    )


def _poll(data: dict[str, object]) -> Poll:
    phase = _PHASES.get(str(data.get("status")))
    if phase is None:
        raise ValueError(f"unknown status {data.get('status')!r}")
    logs = data.get("logs")
    lines = logs.splitlines() if isinstance(logs, str) else []
    error = data.get("error")
    return Poll(
        phase,  # type: ignore[arg-type]
        percent=percent_from_logs(lines) if phase == "running" else None,
        error=str(error) if error else None,
        output=data.get("output"),
        metrics=metrics_of(data.get("metrics"), "predict_time", "total_time"),
    )


def _created(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class ReplicateProvider:
    probes_load = False

    def submit(self, client: UpstreamClient, server: str, sub: Submission) -> Job:
        path, extra = _target(sub.endpoint)
        headers = {}
        if client.spec.prefer_wait:
            headers["Prefer"] = f"wait={client.spec.prefer_wait}"
        data = client.submit(
            "POST",
            f"{server}{path}",
            json={**extra, "input": dict(sub.input)},
            headers=headers,
            timeout=client.spec.request_timeout + client.spec.prefer_wait,
        )
        return _job(client, server, data)

    def poll(self, client: UpstreamClient, job: Job) -> Poll:
        response = client.call("GET", job.urls["get"], ok=(404,))
        if response.status_code == 404:
            return Poll("gone")
        try:
            return _poll(response.json())
        except (ValueError, AttributeError, TypeError) as exc:
            raise CallFailed(
                client.scrub(f"Replicate prediction is malformed: {response.text}")
            ) from exc

    def result_url(self, client: UpstreamClient, _job: Job, last: Poll) -> str:
        url = video_url(dig({"output": last.output}, client.spec.result_path))
        if url is None:
            raise NoResult(client.scrub(f"no video at {client.spec.result_path!r}: {last.output}"))
        return url

    def cancel(self, client: UpstreamClient, job: Job) -> CancelOutcome:
        try:
            response = client.call("POST", job.urls["cancel"], ok=(404, 409, 422))
        except CallFailed:
            return "unknown"
        if response.status_code == 404:
            return "canceled"
        try:
            status = str(response.json().get("status", ""))
        except (ValueError, AttributeError):
            status = ""
        if status in ("succeeded", "failed"):
            return "finished"
        return "canceled" if status == "canceled" or response.is_success else "unknown"

    def find(
        self, client: UpstreamClient, server: str, sub: Submission, since: float
    ) -> Job | None:
        data = client.call_json("GET", f"{server}/v1/predictions")
        for item in data.get("results") or []:
            if not isinstance(item, dict) or item.get("input") != dict(sub.input):
                continue
            created = _created(item.get("created_at"))
            if created is not None and created >= since - _SKEW:
                return _job(client, server, item)
        return None

    def active_jobs(self, _client: UpstreamClient, _server: str) -> int:
        raise NotSupported("Replicate scales its own runners")
