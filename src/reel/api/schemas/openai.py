"""`/v1/videos`: OpenAI's Videos API shapes, request parsing, and the video object of a task."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from reel.api.errors import openai_code
from reel.config import Settings
from reel.db.models import Task
from reel.service import pricing, retention
from reel.service.catalog import Catalog
from reel.service.errors import InvalidParameter, PromptRequired
from reel.service.tasks import NewTask
from reel.types import Aspect, Mode, TaskStatus, Tier

VideoStatus = Literal["queued", "in_progress", "completed", "failed"]

_STATUS: dict[TaskStatus, VideoStatus] = {
    TaskStatus.QUEUED: "queued",
    TaskStatus.RUNNING: "in_progress",
    TaskStatus.COMPLETED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELED: "failed",
}


class VideoError(BaseModel):
    code: str = Field(description='"canceled" for a canceled video; else the failure code.')
    message: str


class Video(BaseModel):
    """OpenAI's video object."""

    id: str
    object: Literal["video"] = "video"
    model: str
    status: VideoStatus
    progress: int = Field(ge=0, le=100)
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = None
    prompt: str | None = None
    size: str
    seconds: str
    remixed_from_video_id: str | None = None
    error: VideoError | None = None


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """Every /v1 error: `{"error": {"message", "type", "param", "code"}}`."""

    error: ErrorDetail


class CreateVideoRequest(BaseModel):
    """Body of `POST /v1/videos` (JSON or multipart/form-data; documentation)."""

    prompt: str = Field(min_length=1)
    model: str = Field(default=pricing.OPENAI_DEFAULT_MODEL, examples=["sora-2", "sora-2-pro"])
    size: Literal["720x1280", "1280x720", "1024x1792", "1792x1024"] = "720x1280"
    seconds: Literal["4", "8", "12"] = "4"
    input_reference: str | dict[str, str] | None = Field(
        default=None,
        description='An image file (multipart), an image URL, or {"image_url": URL}.',
    )


class RemixVideoRequest(BaseModel):
    prompt: str = Field(min_length=1)


# --- parsing -------------------------------------------------------------------------------


class VideoReference(BaseModel):
    id: str


_UPLOAD_MODEL = (
    "An upload's model: sora-2 (default), sora-2-pro or a model this server offers by name, "
    "priced as a create of that model. A reference runs as its source's model."
)


class ExtendVideoRequest(BaseModel):
    """Body of `POST /v1/videos/extensions` (JSON with a reference, or multipart with a file)."""

    prompt: str = Field(min_length=1)
    seconds: Literal["4", "8", "12", "16", "20"]
    video: VideoReference | str = Field(description='{"id": …} (JSON) or an MP4 file (multipart)')
    model: str | None = Field(default=None, description=_UPLOAD_MODEL, examples=["sora-2-pro"])


class EditVideoRequest(BaseModel):
    """Body of `POST /v1/videos/edits` (JSON with a reference, or multipart with a file)."""

    prompt: str = Field(min_length=1)
    video: VideoReference | str = Field(description='{"id": …} (JSON) or an MP4 file (multipart)')
    model: str | None = Field(default=None, description=_UPLOAD_MODEL, examples=["sora-2-pro"])


class CharacterObject(BaseModel):
    id: str
    object: Literal["character"] = "character"
    name: str
    created_at: int


class CharacterList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CharacterObject]
    has_more: bool = False


class CharacterDeleted(BaseModel):
    id: str
    object: Literal["character.deleted"] = "character.deleted"
    deleted: bool = True


def _choice(value: object, allowed: list[str], param: str, default: str) -> str:
    if value is None or value == "":
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value in allowed:
        return value
    raise InvalidParameter(
        f"Invalid value for '{param}': expected one of {', '.join(allowed)}",
        param=param,
        allowed=allowed,
    )


def parse_prompt(value: object, *, max_prompt: int) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PromptRequired("Missing required parameter: 'prompt'", param="prompt")
    if not isinstance(value, str):
        raise InvalidParameter("'prompt' must be a string", param="prompt")
    if "\x00" in value:
        raise InvalidParameter("'prompt' must not contain NUL characters", param="prompt")
    if len(value) > max_prompt:
        raise InvalidParameter(f"'prompt' must be at most {max_prompt} characters", param="prompt")
    return value.strip()


def parse_create(
    fields: dict[str, object],
    *,
    image_data: bytes | None,
    catalog: Catalog,
    max_prompt: int,
) -> NewTask:
    """A create request's fields (JSON object, or multipart form fields) → the task to run.

    ``input_reference`` is an uploaded file (``image_data``), an image URL string, or an
    object ``{"image_url": URL}`` (multipart spells it ``input_reference[image_url]``).
    """
    for name, value in fields.items():  # form fields skip the JSON body's checks
        if isinstance(value, str) and "\x00" in value:
            param = name if "\x00" not in name else "body"
            raise InvalidParameter(f"'{param}' must not contain NUL characters", param=param)
    prompt = parse_prompt(fields.get("prompt"), max_prompt=max_prompt)
    model = fields.get("model") or pricing.OPENAI_DEFAULT_MODEL
    size = _choice(
        fields.get("size"),
        list(pricing.OPERATOR_MODEL_TIERS),
        "size",
        pricing.OPENAI_DEFAULT_SIZE,
    )
    seconds = int(
        _choice(
            fields.get("seconds"),
            [str(s) for s in pricing.OPENAI_SECONDS],
            "seconds",
            str(pricing.OPENAI_DEFAULT_SECONDS),
        )
    )
    tier, model_override = pricing.openai_tier(catalog, model, size)
    width, height = pricing.parse_size(size)
    image_url = _image_url(fields)
    if image_url is not None and image_data is not None:
        raise InvalidParameter(
            "Send input_reference as a file or as an image URL, not both",
            param="input_reference",
        )
    with_image = image_url is not None or image_data is not None
    return NewTask(
        prompt=prompt,
        mode=Mode.IMAGE_TO_VIDEO if with_image else Mode.TEXT_TO_VIDEO,
        tier=tier,
        aspect=Aspect.LANDSCAPE if width > height else Aspect.PORTRAIT,
        duration_s=seconds,
        image_urls=(image_url,) if image_url else (),
        surface="openai",
        credits=_price(catalog, model_override, tier, seconds),
        extra={"openaiModel": model, "size": size},
        model=model_override,
        size=(width, height),
        image_data=image_data,
        image_param="input_reference",
    )


def _price(catalog: Catalog, model: str | None, tier: Tier, seconds: int) -> int:
    offer = catalog.offers.get(model) if model is not None else None
    if offer is not None and offer.price is not None:
        return offer.price[seconds]
    return pricing.openai_price(tier, seconds)


def _image_url(fields: dict[str, object]) -> str | None:
    ref = fields.get("input_reference")
    if isinstance(ref, dict):
        if ref.get("file_id"):
            raise InvalidParameter(
                "input_reference.file_id is not supported; upload the file or pass image_url",
                param="input_reference",
            )
        ref = ref.get("image_url")
    if ref is None:
        ref = fields.get("input_reference[image_url]")
    if fields.get("input_reference[file_id]"):
        raise InvalidParameter(
            "input_reference.file_id is not supported; upload the file or pass image_url",
            param="input_reference",
        )
    if ref is None or ref == "":
        return None
    if not isinstance(ref, str):
        raise InvalidParameter(
            "input_reference must be an image file or an image URL", param="input_reference"
        )
    if ref.strip()[:5].lower() == "data:":
        raise InvalidParameter(
            "input_reference: data: URLs are not accepted; upload the file instead",
            param="input_reference",
        )
    return ref.strip()


# --- presenting -------------------------------------------------------------------------------


def video_object(task: Task, settings: Settings) -> Video:
    status = TaskStatus(task.status)
    extra = task.extra if isinstance(task.extra, dict) else {}
    model = extra.get("openaiModel")
    error = None
    if status is TaskStatus.CANCELED:
        error = VideoError(code="canceled", message=task.error_message or "Canceled by request")
    elif status is TaskStatus.FAILED:
        error = VideoError(
            code=openai_code(task.error_code or "GENERATION_FAILED"),
            message=task.error_message or "Video generation failed",
        )
    media = retention.media_of(task, settings)
    expiry = None if media is None else media.expires_at
    remixed = extra.get("remixedFrom")
    return Video(
        id=task.id,
        model=model if isinstance(model, str) else pricing.TIER_OPENAI_MODEL[Tier(task.tier)],
        status=_STATUS[status],
        progress=100 if status is TaskStatus.COMPLETED else int(task.percent),
        created_at=int(task.created_at),
        completed_at=int(task.finished_at) if task.finished_at is not None else None,
        expires_at=int(expiry) if expiry is not None else None,
        prompt=task.prompt,
        size=f"{task.width}x{task.height}",
        seconds=str(task.duration_s),
        remixed_from_video_id=remixed if isinstance(remixed, str) else None,
        error=error,
    )
