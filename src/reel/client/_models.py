"""Response models: the server's camelCase JSON read into frozen dataclasses.

Parsing is lenient: a missing or mistyped optional field becomes ``None`` and
every model keeps the untouched JSON in ``raw``, so a newer server does not
break an older client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeAlias, cast

__all__ = [
    "Account",
    "Aspect",
    "Duration",
    "JSONObject",
    "Mode",
    "State",
    "Submitted",
    "TaskStatus",
    "Tier",
]

JSONObject: TypeAlias = Mapping[str, object]

Mode: TypeAlias = Literal["textToVideo", "imageToVideo"]
Tier: TypeAlias = Literal["sora2", "sora2-pro-standard", "sora2-pro-high"]
Aspect: TypeAlias = Literal["portrait", "landscape"]
Duration: TypeAlias = Literal["10", "15"]
State: TypeAlias = Literal["processing", "completed", "failed"]


def _empty() -> JSONObject:
    return {}


def _str(data: JSONObject, key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _int(data: JSONObject, key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _float(data: JSONObject, key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _datetime(data: JSONObject, key: str) -> datetime | None:
    text = _str(data, key)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _state(data: JSONObject) -> State:
    """The contract's three states; the server's own ``canceled`` counts as failed."""
    match _str(data, "status"):
        case "completed":
            return "completed"
        case "failed" | "canceled" | "cancelled":
            return "failed"
        case _:
            return "processing"


@dataclass(frozen=True, slots=True)
class Submitted:
    """The answer to ``generate``: the task was accepted and is processing."""

    task_id: str
    status: str
    message: str | None = None
    raw: JSONObject = field(default_factory=_empty, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JSONObject) -> Submitted:
        return cls(
            task_id=_str(data, "taskId") or "",
            status=_str(data, "status") or "processing",
            message=_str(data, "message"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """One answer from ``check-status`` (also an item of ``tasks()``).

    ``stage`` is the contract's ``progress`` string (``queued``, ``generating``,
    …) while the task is processing, and its outcome once it has finished
    (``completed``, ``failed`` or ``canceled``), so it is never ``None`` for a
    finished task. ``percent`` (0-100) and ``queue_position`` are set only while
    the task is processing and only when the server reports them.
    """

    status: State
    task_id: str
    stage: str | None = None
    percent: float | None = None
    queue_position: int | None = None
    created_at: datetime | None = None
    engine: str | None = None
    message: str | None = None
    video_url: str | None = None
    generation_time: int | None = None
    credits_used: int | None = None
    error: str | None = None
    error_code: str | None = None
    canceled: bool = False
    raw: JSONObject = field(default_factory=_empty, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """Whether the task has finished (completed or failed); it will not change again."""
        return self.status != "processing"

    @classmethod
    def from_json(cls, data: JSONObject, *, task_id: str = "") -> TaskStatus:
        """Read a status object; ``task_id`` is used when the body does not name one."""
        state = _state(data)
        progress = data.get("progress")
        percent = _float(data, "progressPercent")
        if percent is None and not isinstance(progress, bool) and isinstance(progress, int | float):
            percent = float(progress)  # a server that reports progress as a number
        error_code = _str(data, "errorCode")
        canceled = (
            data.get("canceled") is True
            or error_code == "TASK_CANCELED"
            or _str(data, "status") in ("canceled", "cancelled")
        )
        stage = progress if isinstance(progress, str) else None
        if state != "processing":
            stage = stage or ("canceled" if canceled else state)
        return cls(
            status=state,
            task_id=_str(data, "taskId") or task_id,
            stage=stage,
            percent=percent,
            queue_position=_int(data, "queuePosition"),
            created_at=_datetime(data, "createdAt"),
            engine=_str(data, "engine"),
            message=_str(data, "message"),
            video_url=_str(data, "videoUrl"),
            generation_time=_int(data, "generationTime"),
            credits_used=_int(data, "creditsUsed"),
            error=_str(data, "error"),
            error_code=error_code,
            canceled=canceled,
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Account:
    """The calling key's account: ``GET /api/sora-2/account``."""

    key_id: str | None
    name: str | None
    credits: int | None
    rate_limits: JSONObject = field(default_factory=_empty)
    raw: JSONObject = field(default_factory=_empty, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JSONObject) -> Account:
        return cls(
            key_id=_str(data, "keyId"),
            name=_str(data, "name"),
            credits=_int(data, "credits"),
            rate_limits=as_object(data.get("rateLimits")),
            raw=data,
        )


def as_object(value: object) -> JSONObject:
    """``value`` if it is a JSON object (with string keys), else an empty one."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in cast(Mapping[object, object], value).items()}
