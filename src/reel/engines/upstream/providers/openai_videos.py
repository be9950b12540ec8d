"""OpenAI-compatible ``/v1/videos``: OpenAI itself, vLLM-Omni, SGLang-Diffusion, another Reel.

Create ``POST /v1/videos`` as multipart form data (the shape vLLM-Omni and SGLang-Diffusion
require and OpenAI accepts): each input field a form field (objects and lists JSON-encoded),
the start frame an uploaded file (``input_reference``) → a video object ``{id, status: queued |
in_progress | completed | failed, progress, error: {code, message}, prompt, created_at}``.
Poll ``GET /v1/videos/{id}``; download ``GET /v1/videos/{id}/content`` from the configured
server itself; cancel ``DELETE /v1/videos/{id}``. The job list ``GET /v1/videos`` serves both
finding a lost create (by prompt and creation time) and spreading a pool by load.
"""

from __future__ import annotations

import json

from reel.engines.upstream.client import CallFailed, OutcomeUnknown, UpstreamClient
from reel.engines.upstream.providers.base import (
    CancelOutcome,
    Job,
    NotSupported,
    Poll,
    Submission,
    metrics_of,
    number,
)

_PHASES = {
    "queued": "queued",
    "in_progress": "running",
    "processing": "running",
    "completed": "succeeded",
    "failed": "failed",
    "cancelled": "canceled",
    "canceled": "canceled",
}
_ACTIVE = ("queued", "in_progress", "processing")
_SKEW = 120.0
_LIST_LIMIT = 100


def _form_value(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _job(client: UpstreamClient, server: str, data: dict[str, object]) -> Job:
    job_id = data.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise OutcomeUnknown(client.scrub(f"video create answer without id: {data}"))
    base = f"{server}/v1/videos/{job_id}"
    return Job(job_id, server, {"get": base, "content": f"{base}/content"})


class OpenAIVideosProvider:
    probes_load = True

    def submit(self, client: UpstreamClient, server: str, sub: Submission) -> Job:
        form: list[tuple[str, tuple[str | None, bytes | str, str | None]]] = [
            (name, (None, _form_value(value), None)) for name, value in sub.input.items()
        ]
        if sub.image_png is not None:
            form.append((client.spec.image_field, ("start.png", sub.image_png, "image/png")))
        data = client.submit("POST", f"{server}/v1/videos", files=form)
        return _job(client, server, data)

    def poll(self, client: UpstreamClient, job: Job) -> Poll:
        response = client.call("GET", job.urls["get"], ok=(404,))
        if response.status_code == 404:
            return Poll("gone")
        try:
            data = response.json()
            phase = _PHASES[str(data["status"])]
        except (ValueError, KeyError, TypeError) as exc:
            raise CallFailed(client.scrub(f"video object is malformed: {response.text}")) from exc
        error = data.get("error")
        if isinstance(error, dict):
            error = error.get("message") or error.get("code")
        return Poll(
            phase,  # type: ignore[arg-type]
            percent=number(data.get("progress")),
            error=str(error) if error else None,
            metrics=metrics_of(data.get("usage") or data.get("metrics"), "cost", "inference_time"),
        )

    def result_url(self, _client: UpstreamClient, job: Job, _last: Poll) -> str:
        return job.urls["content"]

    def cancel(self, client: UpstreamClient, job: Job) -> CancelOutcome:
        try:
            response = client.call("DELETE", job.urls["get"], ok=(404,))
        except CallFailed:
            return "unknown"
        return "canceled" if response.is_success or response.status_code == 404 else "unknown"

    def find(
        self, client: UpstreamClient, server: str, sub: Submission, since: float
    ) -> Job | None:
        items = self._list(client, server)
        if items and not any("prompt" in item for item in items):
            raise NotSupported("this server's job list does not show prompts")
        for item in items:
            created = number(item.get("created_at"))
            if (
                item.get("prompt") == sub.prompt
                and created is not None
                and created >= since - _SKEW
            ):
                return _job(client, server, item)
        return None

    def active_jobs(self, client: UpstreamClient, server: str) -> int:
        return sum(1 for item in self._list(client, server) if item.get("status") in _ACTIVE)

    def _list(self, client: UpstreamClient, server: str) -> list[dict[str, object]]:
        data = client.call_json(
            "GET", f"{server}/v1/videos", params={"limit": _LIST_LIMIT, "order": "desc"}
        )
        items = data.get("data")
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
