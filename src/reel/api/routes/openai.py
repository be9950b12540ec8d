"""`/v1/videos`: OpenAI's Videos API over the same tasks, keys, credits and limits.

Only tasks created through this surface are visible here (so every object is a valid OpenAI
video); the seed surface sees them all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from reel.api import idempotency
from reel.api.deps import CreateKey, JsonBody, ServicesDep, StatusKey, json_body
from reel.api.routes.media import file_response
from reel.api.schemas.openai import (
    CreateVideoRequest,
    OpenAIError,
    RemixVideoRequest,
    Video,
    VideoDeleted,
    VideoList,
    parse_create,
    parse_prompt,
    video_object,
)
from reel.db.models import ApiKey, Task
from reel.service import characters, remix, retention, tasks
from reel.service.context import Services
from reel.service.errors import (
    InvalidParameter,
    MediaExpired,
    NotFound,
    TaskNotFound,
    VideoNotReady,
)
from reel.types import FINAL_STATUSES

router = APIRouter(prefix="/v1", tags=["OpenAI Videos API"])

#: How long the OpenAI SDK's poll helper waits between retrieves of an unfinished video.
POLL_AFTER_MS = 2000
SURFACE = "openai"

_TEXT = {
    400: "Invalid request",
    401: "Missing, invalid or revoked API key",
    404: "No such video for this key",
    409: "A request with this Idempotency-Key is still in flight, or the video cannot be canceled",
    410: "The video's files were removed after its retention period",
    422: "This Idempotency-Key was used with a different body",
    429: "Rate limit, active-task limit, or not enough credits (insufficient_quota)",
    500: "Internal error",
    503: "Database busy; retry",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, object]]:
    return {s: {"model": OpenAIError, "description": _TEXT[s]} for s in statuses}


def _body_doc(model: type[CreateVideoRequest] | type[RemixVideoRequest]) -> dict[str, object]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    content: dict[str, object] = {"application/json": {"schema": ref}}
    if model is CreateVideoRequest:
        content["multipart/form-data"] = {"schema": ref}
    return {"requestBody": {"required": True, "content": content}}


# --- create ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateInput:
    fields: dict[str, object]
    image_data: bytes | None
    #: What the Idempotency-Key's body hash is computed over.
    canonical: object


async def create_input(request: Request, services: ServicesDep) -> CreateInput:
    """JSON or multipart/form-data (what the OpenAI SDK sends), size-capped."""
    ctype = request.headers.get("content-type", "").lower()
    if not ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        body = await json_body(request, services)
        return CreateInput(body, None, {"json": body})
    s = services.settings
    # The whole body is capped as it streams (reel.api.middleware); here each part is too.
    try:
        form = await request.form(max_files=1, max_fields=32, max_part_size=s.max_body_bytes)
    except Exception as exc:  # malformed multipart, too many parts
        raise InvalidParameter("request body is not valid form data", param="body") from exc
    fields: dict[str, object] = {}
    files: dict[str, str] = {}
    image: bytes | None = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != "input_reference":
                raise InvalidParameter(f"unexpected file field {name!r}", param=name)
            image = await value.read(s.image_max_bytes + 1)
            if len(image) > s.image_max_bytes:
                raise InvalidParameter("input_reference is too large", param="input_reference")
            files[name] = hashlib.sha256(image).hexdigest()
        else:
            fields[name] = value
    await form.close()
    return CreateInput(fields, image, {"form": fields, "files": files})


CreateInputDep = Annotated[CreateInput, Depends(create_input)]


@router.post(
    "/videos",
    response_model=Video,
    responses=_errors(400, 401, 409, 422, 429, 500, 503),
    openapi_extra=_body_doc(CreateVideoRequest),
    summary="Create a video",
)
def create_video(
    key: CreateKey,
    data: CreateInputDep,
    services: ServicesDep,
    request: Request,
    response: Response,
) -> dict[str, object]:
    cmd = parse_create(
        data.fields,
        image_data=data.image_data,
        catalog=services.catalog,
        max_prompt=services.settings.max_prompt_length,
    )
    return idempotency.run(
        request,
        response,
        services,
        key,
        route="POST /v1/videos",
        canonical=data.canonical,
        create=lambda hook: tasks.create(
            services, key, characters.named_in(services, key, cmd), on_insert=hook
        ),
        render=lambda task: _dump(video_object(task, services.settings)),
    )


@router.post(
    "/videos/{video_id}/remix",
    response_model=Video,
    responses=_errors(400, 401, 404, 409, 410, 422, 429, 500, 503),
    openapi_extra=_body_doc(RemixVideoRequest),
    summary="Remix a completed video: a new video that continues from its last frame",
)
def remix_video(
    video_id: str,
    key: CreateKey,
    body: JsonBody,
    services: ServicesDep,
    request: Request,
    response: Response,
) -> dict[str, object]:
    prompt = parse_prompt(body.get("prompt"), max_prompt=services.settings.max_prompt_length)
    _visible(services, key, video_id)

    def create(hook: tasks.OnInsert | None) -> Task:
        cmd = remix.remix_command(services, key, video_id, prompt)
        return tasks.create(services, key, cmd, on_insert=hook)

    return idempotency.run(
        request,
        response,
        services,
        key,
        route=f"POST /v1/videos/{video_id}/remix",
        canonical={"json": body},
        create=create,
        render=lambda task: _dump(video_object(task, services.settings)),
    )


# --- read -----------------------------------------------------------------------------------


@router.get(
    "/videos/{video_id}",
    response_model=Video,
    responses=_errors(401, 404, 429, 500, 503),
    summary="Retrieve a video",
)
def retrieve_video(
    video_id: str, key: StatusKey, services: ServicesDep, response: Response
) -> dict[str, object]:
    task = _visible(services, key, video_id)
    if task.status not in FINAL_STATUSES:
        response.headers["openai-poll-after-ms"] = str(POLL_AFTER_MS)
    return _dump(video_object(task, services.settings))


@router.get(
    "/videos",
    response_model=VideoList,
    responses=_errors(400, 401, 404, 429, 500, 503),
    summary="List videos (cursor pagination)",
)
def list_videos(
    key: StatusKey,
    services: ServicesDep,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> VideoList:
    with services.db.read() as session:
        if after is not None:
            tasks.get(session, key, after)  # an unknown cursor is a 404, like a missing video
        rows = tasks.list_for_key(
            session, key, limit=limit + 1, after=after, order=order, surface=SURFACE
        )
    page = rows[:limit]
    return VideoList(
        data=[video_object(t, services.settings) for t in page],
        first_id=page[0].id if page else None,
        last_id=page[-1].id if page else None,
        has_more=len(rows) > limit,
    )


_VARIANTS = ("video", "thumbnail", "spritesheet")


@router.get(
    "/videos/{video_id}/content",
    response_class=FileResponse,
    responses={
        200: {"content": {"video/mp4": {}, "image/webp": {}, "image/jpeg": {}}},
        307: {"description": "On object storage: a short-lived presigned link to the file"},
        **_errors(400, 401, 404, 410, 429, 500, 503),
    },
    summary="Download the MP4, its WebP thumbnail or its JPEG spritesheet",
)
def download_content(
    video_id: str,
    key: StatusKey,
    services: ServicesDep,
    variant: Annotated[Literal["video", "thumbnail", "spritesheet"], Query()] = "video",
) -> Response:
    task = _visible(services, key, video_id)
    media = retention.media_of(task, services.settings)
    if media is None:
        raise VideoNotReady()
    if retention.is_expired(task, services.settings):
        raise MediaExpired()
    missing = NotFound(f"This video has no {variant}")
    return file_response(services.storage, media.key(variant), missing=missing)


# --- cancel and delete ------------------------------------------------------------------------


@router.post(
    "/videos/{video_id}/cancel",
    response_model=Video,
    responses=_errors(401, 404, 409, 429, 500, 503),
    summary="Cancel an unfinished video (extension); it then reads as failed, code canceled",
)
def cancel_video(video_id: str, key: StatusKey, services: ServicesDep) -> dict[str, object]:
    _visible(services, key, video_id)
    task = tasks.cancel(services, key, video_id)
    return _dump(video_object(task, services.settings))


@router.delete(
    "/videos/{video_id}",
    response_model=VideoDeleted,
    responses=_errors(401, 404, 429, 500, 503),
    summary="Delete a video and its files (an unfinished one is canceled first)",
)
def delete_video(video_id: str, key: StatusKey, services: ServicesDep) -> VideoDeleted:
    _visible(services, key, video_id)
    task = tasks.delete(services, key, video_id)
    return VideoDeleted(id=task.id)


def _visible(services: Services, key: ApiKey, video_id: str) -> Task:
    """The key's task, if it was created through /v1 (others are not videos here)."""
    with services.db.read() as session:
        task = tasks.get(session, key, video_id)
    if task.surface != SURFACE:
        raise TaskNotFound()
    return task


def _dump(video: Video) -> dict[str, object]:
    return video.model_dump(mode="json")
