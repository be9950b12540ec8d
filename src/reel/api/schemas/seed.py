"""The `/api/sora-2` contract: request parsing in the contract's order, response models, and
the presenter that turns a task into a check-status answer."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from reel.db.models import Task
from reel.service import retention
from reel.service.context import Services
from reel.service.errors import (
    ContentPolicyViolation,
    ImageRequired,
    ImageUrlsRequired,
    InvalidParameter,
    PromptRequired,
    TaskIdRequired,
)
from reel.service.pricing import DEFAULT_DURATION, DURATIONS
from reel.service.tasks import NewTask
from reel.types import Aspect, Mode, TaskStatus, Tier

#: Image fields clients sometimes send instead of ``imageUrls``; the contract refuses them.
_OTHER_IMAGE_FIELDS = (
    "image",
    "images",
    "imageUrl",
    "imageBase64",
    "imageData",
    "base64",
    "image_url",
    "image_urls",
    "imageFile",
    "inputImage",
)
_BASE64ISH = re.compile(r"^[A-Za-z0-9+/=\s]{64,}$")


class GenerateRequest(BaseModel):
    """Body of `POST /api/sora-2/generate` (documentation; parsing is :func:`parse_generate`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prompt": "A golden retriever running on a beach at sunset, cinematic lighting",
                    "mode": "textToVideo",
                    "modelTier": "sora2",
                    "aspectRatio": "landscape",
                    "videoDuration": "10",
                }
            ]
        }
    )

    prompt: str = Field(description="Video generation prompt; not blank.", min_length=1)
    mode: Mode = Field(description="textToVideo or imageToVideo")
    modelTier: Tier = Field(default=Tier.SORA2)
    aspectRatio: Aspect = Field(default=Aspect.PORTRAIT)
    videoDuration: Literal["10", "15", 10, 15] = Field(
        default="10", description="Seconds; the string or the number. Default 10."
    )
    imageUrls: list[str] | None = Field(
        default=None,
        description="Public http(s) image URLs for imageToVideo; the first is the start frame.",
    )
    callBackUrl: str | None = Field(
        default=None,
        description="Extension: a public http(s) URL that receives this task's signed "
        "video.completed / video.failed / video.canceled event (overrides the key's webhook).",
    )


class CheckStatusRequest(BaseModel):
    taskId: str = Field(examples=["task_0123456789abcdef01234567"])


class ErrorBody(BaseModel):
    success: Literal[False] = False
    error: str
    errorCode: str
    requiredCredits: int | None = None
    param: str | None = None
    requestId: str | None = None
    maxActiveTasks: int | None = None
    allowed: list[str] | None = None


class GenerateResponse(BaseModel):
    success: Literal[True] = True
    status: Literal["processing"] = "processing"
    taskId: str
    message: str


class StatusResponse(BaseModel):
    """A task's state. Fields beyond the contract are documented extensions."""

    success: bool
    status: Literal["processing", "completed", "failed"]
    taskId: str
    message: str | None = None
    progress: str | None = Field(default=None, description="Stage while processing.")
    progressPercent: float | None = None
    queuePosition: int | None = None
    videoUrl: str | None = None
    thumbnailUrl: str | None = Field(default=None, description="Extension: WebP still.")
    spritesheetUrl: str | None = Field(default=None, description="Extension: JPEG frame grid.")
    generationTime: int | None = Field(default=None, description="Seconds from accepted to done.")
    creditsUsed: int | None = None
    error: str | None = None
    errorCode: str | None = None
    canceled: bool | None = None
    creditsRefunded: int | None = None
    engine: str | None = None
    modelTier: str
    mode: str
    aspectRatio: str
    videoDuration: str
    createdAt: str
    completedAt: str | None = None
    expiresAt: str | None = None
    prompt: str | None = Field(
        default=None, description="The task's prompt; in `/tasks` listings only (extension)."
    )
    retryOf: str | None = Field(
        default=None, description="The failed task an operator retried as this one (extension)."
    )


class TaskPage(BaseModel):
    success: Literal[True] = True
    data: list[StatusResponse]
    hasMore: bool
    nextCursor: str | None = Field(
        description="Pass as `after` for the next page; null on the last page (always present)."
    )

    @model_serializer(mode="wrap")
    def _always_cursor(self, handler: SerializerFunctionWrapHandler):
        # The route leaves empty fields out of each task (response_model_exclude_none); the
        # cursor is required by the schema, so it stays, null on the last page. (No return
        # annotation: pydantic would take it as the serialized schema.)
        data = handler(self)
        if isinstance(data, dict):
            data.setdefault("nextCursor", self.nextCursor)
        return data


class TierPrice(BaseModel):
    modelTier: str
    #: Credits per duration in seconds (``"10"``, ``"15"``).
    credits: dict[str, int]
    #: Output size per aspect ratio, ``"WIDTHxHEIGHT"``.
    sizes: dict[str, str]
    engine: str
    sandbox: bool = Field(description="Served by the sandbox engine: a stand-in, not a model.")


class PricingResponse(BaseModel):
    success: Literal[True] = True
    unit: Literal["credits"] = "credits"
    modes: list[str]
    aspectRatios: list[str]
    durations: list[str]
    defaultDuration: str
    tiers: list[TierPrice]


class RateLimitState(BaseModel):
    limit: int
    remaining: int
    resetSeconds: int


class QuotaState(BaseModel):
    """A cap of the account over a UTC calendar period; ``limit`` ``None``: no cap."""

    limit: int | None
    used: int
    resetSeconds: int


class AccountResponse(BaseModel):
    success: Literal[True] = True
    keyId: str
    name: str
    accountId: str
    accountName: str
    credits: int
    activeTasks: int
    maxActiveTasks: int
    rateLimits: dict[str, RateLimitState]
    quotas: dict[str, QuotaState]
    accountCreatesPerHour: int | None
    usage: dict[str, int]


def _enum(
    value: object, enum: type[Mode] | type[Tier] | type[Aspect], param: str, default: object = None
) -> object:
    if value is None and default is not None:
        return default
    allowed = [m.value for m in enum]
    if isinstance(value, str) and value in allowed:
        return enum(value)
    raise InvalidParameter(
        f"{param} must be one of: {', '.join(allowed)}", param=param, allowed=allowed
    )


def _looks_inline(value: object) -> bool:
    if not isinstance(value, str):
        return False
    v = value.strip()
    return v[:5].lower() == "data:" or bool(_BASE64ISH.match(v))


def parse_generate(body: dict[str, object], *, max_prompt: int, max_images: int) -> NewTask:
    images = body.get("imageUrls")
    image_list = images if isinstance(images, list) else [images]
    if any(body.get(f) not in (None, "", []) for f in _OTHER_IMAGE_FIELDS) or any(
        _looks_inline(v) for v in image_list
    ):
        raise ImageUrlsRequired()

    prompt = body.get("prompt")
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        raise PromptRequired()
    if not isinstance(prompt, str):
        raise InvalidParameter("prompt must be a string", param="prompt")
    if "\x00" in prompt:
        raise InvalidParameter("prompt must not contain NUL characters", param="prompt")
    if len(prompt) > max_prompt:
        raise InvalidParameter(f"prompt must be at most {max_prompt} characters", param="prompt")

    mode = _enum(body.get("mode"), Mode, "mode")
    tier = _enum(body.get("modelTier"), Tier, "modelTier", Tier.SORA2)
    aspect = _enum(body.get("aspectRatio"), Aspect, "aspectRatio", Aspect.PORTRAIT)

    raw_duration = body.get("videoDuration", DEFAULT_DURATION)
    if raw_duration is None:
        raw_duration = DEFAULT_DURATION
    allowed = [str(d) for d in DURATIONS]
    if (
        isinstance(raw_duration, bool)
        or str(raw_duration) not in allowed
        or isinstance(raw_duration, float)
    ):
        raise InvalidParameter(
            f"videoDuration must be one of: {', '.join(allowed)}",
            param="videoDuration",
            allowed=allowed,
        )
    duration = int(str(raw_duration))

    urls: tuple[str, ...] = ()
    if mode is Mode.IMAGE_TO_VIDEO:
        if images is None or images == []:
            raise ImageRequired()
        if not isinstance(images, list) or not all(isinstance(u, str) for u in images):
            raise InvalidParameter("imageUrls must be a list of URL strings", param="imageUrls")
        if len(images) > max_images:
            raise InvalidParameter(
                f"imageUrls accepts at most {max_images} URLs", param="imageUrls"
            )
        if any(not u.strip() for u in images):
            raise ImageRequired("imageUrls must not contain empty strings")
        urls = tuple(u.strip() for u in images)
    elif images is not None and not isinstance(images, list):
        raise InvalidParameter("imageUrls must be a list of URL strings", param="imageUrls")

    assert isinstance(mode, Mode) and isinstance(tier, Tier) and isinstance(aspect, Aspect)
    return NewTask(
        prompt=prompt.strip(),
        mode=mode,
        tier=tier,
        aspect=aspect,
        duration_s=duration,
        image_urls=urls,
    )


def parse_task_id(body: dict[str, object]) -> str:
    task_id = body.get("taskId")
    if task_id is None or (isinstance(task_id, str) and not task_id.strip()):
        raise TaskIdRequired()
    if not isinstance(task_id, str) or len(task_id) > 100 or "\x00" in task_id:
        raise InvalidParameter("taskId must be a task id string", param="taskId")
    return task_id.strip()


# --- presenting -------------------------------------------------------------------------------


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def base_url(request: Request, services: Services) -> str:
    return services.settings.public_url or str(request.base_url)


def _retry_of(task: Task) -> str | None:
    origin = (task.extra or {}).get("retryOf")
    return origin if isinstance(origin, str) else None


def _failure_code(task: Task) -> str:
    """A refused video keeps its policy code; every other failure is GENERATION_FAILED."""
    refused = task.error_code == ContentPolicyViolation.code
    return ContentPolicyViolation.code if refused else "GENERATION_FAILED"


def present(
    task: Task,
    *,
    services: Services,
    request: Request,
    queue_position: int | None = None,
    with_prompt: bool = False,
) -> StatusResponse:
    common: dict[str, Any] = {
        "prompt": task.prompt if with_prompt else None,
        "taskId": task.id,
        "engine": task.engine,
        "modelTier": task.tier,
        "mode": task.mode,
        "aspectRatio": task.aspect,
        "videoDuration": str(task.duration_s),
        "createdAt": _iso(task.created_at),
        "completedAt": _iso(task.finished_at),
        "retryOf": _retry_of(task),
    }
    status = TaskStatus(task.status)
    media = retention.media_of(task, services.settings)
    if status is TaskStatus.COMPLETED and media is not None:
        ttl = services.settings.media_url_ttl
        base = base_url(request, services)
        # Previews are made beside every video; not checked per poll (a storage round trip).
        video, thumb, sprite = (
            services.storage.url(k, base_url=base, expires_in=ttl)
            for k in (media.video, media.thumbnail, media.spritesheet)
        )
        return StatusResponse(
            success=True,
            status="completed",
            message="Video generation completed",
            videoUrl=video,
            thumbnailUrl=thumb,
            spritesheetUrl=sprite,
            generationTime=round((task.finished_at or task.created_at) - task.created_at),
            creditsUsed=task.credits,
            progressPercent=100.0,
            expiresAt=_iso(media.expires_at),
            **common,
        )
    if status in (TaskStatus.FAILED, TaskStatus.CANCELED):
        canceled = status is TaskStatus.CANCELED
        return StatusResponse(
            success=False,
            status="failed",
            error=task.error_message or "Video generation failed",
            errorCode="TASK_CANCELED" if canceled else _failure_code(task),
            canceled=canceled,
            creditsRefunded=task.credits,
            creditsUsed=0,
            **common,
        )
    return StatusResponse(
        success=True,
        status="processing",
        progress=task.stage,
        progressPercent=task.percent,
        queuePosition=queue_position,
        message=f"Video generation {task.stage}",
        **common,
    )
