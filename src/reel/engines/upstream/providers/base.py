"""What the failover engine needs from each upstream API."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from reel.engines.upstream.client import JSONObject, UpstreamClient, same_origin
from reel.types import Mode

Phase = Literal["queued", "running", "succeeded", "failed", "canceled", "gone"]
CancelOutcome = Literal["canceled", "finished", "unknown"]


@dataclass(frozen=True, slots=True)
class Submission:
    mode: Mode
    #: fal app id / Replicate target for this mode ("" for OpenAI-compatible).
    endpoint: str
    #: The rendered input object.
    input: Mapping[str, object]
    #: The start frame for multipart upload (``image = "upload"``).
    image_png: bytes | None = None
    #: The prompt, to recognise our job in an upstream's job list.
    prompt: str = ""
    #: Reel's signed link the upstream calls when the job ends (fal ``webhook = true``).
    callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A job that exists upstream. JSON-able through :meth:`to_state` for checkpoints."""

    id: str
    server: str
    #: Provider URLs for this job (``status``, ``result``, ``cancel``, ``get``…).
    urls: Mapping[str, str] = field(default_factory=dict)

    def to_state(self) -> dict[str, object]:
        return {"id": self.id, "server": self.server, "urls": dict(self.urls)}

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> Job | None:
        job_id, server, urls = state.get("id"), state.get("server"), state.get("urls", {})
        if not isinstance(job_id, str) or not isinstance(server, str) or not isinstance(urls, dict):
            return None
        return cls(job_id, server, {str(k): str(v) for k, v in urls.items()})


@dataclass(frozen=True, slots=True)
class Poll:
    phase: Phase
    percent: float | None = None
    queue_position: int | None = None
    #: Upstream error text (operator logs only).
    error: str | None = None
    #: The result payload when it comes with the status (Replicate ``output``).
    output: object = None
    #: Numbers the upstream reports: ``predict_time``, ``inference_time``, ``cost``.
    metrics: Mapping[str, float] = field(default_factory=dict)


class NotSupported(Exception):
    """The upstream API offers no way to do this."""


class Provider(Protocol):
    #: Whether a pool of servers is spread by asking each server for its own job list.
    probes_load: bool

    def submit(self, client: UpstreamClient, server: str, sub: Submission) -> Job: ...

    def poll(self, client: UpstreamClient, job: Job) -> Poll: ...

    def result_url(self, client: UpstreamClient, job: Job, last: Poll) -> str:
        """Where the finished video is (an upstream URL, or a trusted server endpoint)."""
        ...

    def cancel(self, client: UpstreamClient, job: Job) -> CancelOutcome: ...

    def find(
        self, client: UpstreamClient, server: str, sub: Submission, since: float
    ) -> Job | None:
        """The job a lost submission created, if the upstream lists it. ``NotSupported``."""
        ...

    def active_jobs(self, client: UpstreamClient, server: str) -> int:
        """Jobs queued or running on ``server`` (for pools). ``NotSupported``."""
        ...


# --- helpers shared by the adapters ----------------------------------------------------------

_PERCENT: Final = re.compile(r"(\d{1,3}(?:\.\d+)?)\s?%")
_STEPS: Final = re.compile(r"\b(\d{1,5})\s?/\s?(\d{1,5})\b")


def percent_from_logs(lines: Sequence[str]) -> float | None:
    """The latest progress a model printed (tqdm's ``45%|`` or ``12/50``), if any."""
    for line in reversed(lines[-20:]):
        match = _PERCENT.search(line)
        if match and float(match.group(1)) <= 100:
            return float(match.group(1))
        steps = _STEPS.search(line)
        if steps and 0 < int(steps.group(2)) and int(steps.group(1)) <= int(steps.group(2)):
            return 100.0 * int(steps.group(1)) / int(steps.group(2))
    return None


def dig(data: object, path: str) -> object:
    """Follow a dotted path (``video.url``, ``output.0``) through JSON; ``None`` if absent."""
    current = data
    for part in [p for p in path.split(".") if p]:
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def video_url(value: object) -> str | None:
    """A URL from a result value: a string, the first of a list, or an object's ``url``."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, Mapping):
        value = value.get("url")
    return value if isinstance(value, str) and value else None


def job_urls(
    data: JSONObject, keys: Mapping[str, str], trusted: Mapping[str, str], server: str
) -> dict[str, str]:
    """Job URLs from an upstream answer, kept only when they point at ``server`` itself;
    otherwise the documented URL we build (``trusted``) is used."""
    urls = dict(trusted)
    for name, key in keys.items():
        value = dig(data, key)
        if isinstance(value, str) and same_origin(value, (server,)):
            urls[name] = value
    return urls


def number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    return float(value) if isinstance(value, int | float) else None


def metrics_of(data: object, *names: str) -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(data, Mapping):
        for name in names:
            value = number(data.get(name))
            if value is not None:
                out[name] = value
    return out


class NoResult(Exception):
    """A job finished upstream but left no usable video (operator detail in ``detail``)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
