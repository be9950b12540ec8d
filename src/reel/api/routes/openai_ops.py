"""`/v1/videos/extensions`, `/v1/videos/edits` and `/v1/videos/characters`.

A source video is a reference to a completed video of the same key (JSON:
``{"video": {"id": …}}``) or an uploaded MP4 (multipart ``video``, what the ``openai`` package
sends). Uploads are capped as they stream (``reel.api.middleware``), decoded in the bounded
decode pool and re-encoded before any engine sees them (``reel.service.sources``); an upload runs
as the request's ``model`` field (``sora-2`` without one), a reference as its source's model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from reel.api import idempotency
from reel.api.deps import CreateKey, ServicesDep, StatusKey, json_body
from reel.api.routes.openai import _errors
from reel.api.schemas.openai import (
    CharacterDeleted,
    CharacterList,
    CharacterObject,
    EditVideoRequest,
    ExtendVideoRequest,
    Video,
    parse_prompt,
    video_object,
)
from reel.db.models import Character, Task
from reel.media.clips import UPLOAD_MAX_BYTES
from reel.service import characters, extensions, sources, tasks
from reel.service.errors import InvalidParameter

router = APIRouter(prefix="/v1", tags=["OpenAI Videos API"])


def _body_doc(model: type[BaseModel], *, json: bool = True) -> dict[str, object]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    content: dict[str, object] = {"multipart/form-data": {"schema": ref}}
    if json:
        content["application/json"] = {"schema": ref}
    return {"requestBody": {"required": True, "content": content}}


# --- the request body -------------------------------------------------------------------------


@dataclass(frozen=True)
class OpInput:
    fields: dict[str, object]
    ref: sources.SourceRef
    canonical: object


async def op_input(request: Request, services: ServicesDep) -> OpInput:
    """JSON (``video`` = ``{"id": …}``) or multipart (``video`` = a file, or ``video[id]``)."""
    ctype = request.headers.get("content-type", "").lower()
    if not ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        body = await json_body(request, services)
        video = body.get("video")
        video_id = video.get("id") if isinstance(video, dict) else video
        if video_id is not None and not isinstance(video_id, str):
            raise InvalidParameter("'video' must be {\"id\": VIDEO_ID} or a file", param="video")
        ref = sources.SourceRef(video_id=video_id, model=body.get("model"))
        return OpInput(body, ref, {"json": body})
    try:
        form = await request.form(max_files=1, max_fields=16, max_part_size=UPLOAD_MAX_BYTES)
    except Exception as exc:  # malformed multipart, too many parts
        raise InvalidParameter("request body is not valid form data", param="body") from exc
    fields: dict[str, object] = {}
    upload: bytes | None = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != "video":
                raise InvalidParameter(f"unexpected file field {name!r}", param=name)
            upload = await value.read(UPLOAD_MAX_BYTES + 1)
            if len(upload) > UPLOAD_MAX_BYTES:
                raise InvalidParameter("video is too large", param="video")
        elif isinstance(value, str) and "\x00" in value:
            raise InvalidParameter(f"'{name}' must not contain NUL characters", param="body")
        else:
            fields[name] = value
    await form.close()
    video_id = fields.get("video[id]") or fields.get("video")
    digest = hashlib.sha256(upload).hexdigest() if upload is not None else None
    ref = sources.SourceRef(
        video_id=str(video_id) if video_id and upload is None else None,
        upload=upload,
        model=fields.get("model"),
    )
    return OpInput(fields, ref, {"form": fields, "file": digest})


OpInputDep = Annotated[OpInput, Depends(op_input)]


# --- extensions and edits ---------------------------------------------------------------------


@router.post(
    "/videos/extensions",
    response_model=Video,
    responses=_errors(400, 401, 404, 409, 410, 422, 429, 500, 503),
    openapi_extra=_body_doc(ExtendVideoRequest),
    summary="Extend a video: the source followed by a new segment continuing from its end",
)
def extend_video(
    key: CreateKey, data: OpInputDep, services: ServicesDep, request: Request, response: Response
) -> dict[str, object]:
    prompt = parse_prompt(data.fields.get("prompt"), max_prompt=services.settings.max_prompt_length)
    seconds = _seconds(data.fields.get("seconds"))

    def create(hook: tasks.OnInsert | None) -> Task:
        limit = extensions.MAX_CHAIN_SECONDS - seconds
        with sources.open_source(
            services, key, data.ref, min_seconds=1, max_seconds=limit
        ) as source:
            cmd = extensions.extension_command(services, source, prompt, seconds)
            return tasks.create(services, key, cmd, on_insert=hook)

    return _run(request, response, services, key, "POST /v1/videos/extensions", data, create)


@router.post(
    "/videos/edits",
    response_model=Video,
    responses=_errors(400, 401, 404, 409, 410, 422, 429, 500, 503),
    openapi_extra=_body_doc(EditVideoRequest),
    summary="Edit a video: a pass over the source that keeps its length and size",
)
def edit_video(
    key: CreateKey, data: OpInputDep, services: ServicesDep, request: Request, response: Response
) -> dict[str, object]:
    prompt = parse_prompt(data.fields.get("prompt"), max_prompt=services.settings.max_prompt_length)

    def create(hook: tasks.OnInsert | None) -> Task:
        with sources.open_source(
            services, key, data.ref, min_seconds=1, max_seconds=extensions.MAX_CHAIN_SECONDS
        ) as source:
            cmd = extensions.edit_command(services, source, prompt)
            return tasks.create(services, key, cmd, on_insert=hook)

    return _run(request, response, services, key, "POST /v1/videos/edits", data, create)


def _seconds(value: object) -> int:
    allowed = [str(s) for s in extensions.EXTENSION_SECONDS]
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or value not in allowed:
        raise InvalidParameter(
            f"Invalid value for 'seconds': expected one of {', '.join(allowed)}",
            param="seconds",
            allowed=allowed,
        )
    return int(value)


def _run(
    request: Request,
    response: Response,
    services: ServicesDep,
    key: CreateKey,
    route: str,
    data: OpInput,
    create: idempotency.Create,
) -> dict[str, object]:
    return idempotency.run(
        request,
        response,
        services,
        key,
        route=route,
        canonical=data.canonical,
        create=create,
        render=lambda task: video_object(task, services.settings).model_dump(mode="json"),
    )


# --- characters -------------------------------------------------------------------------------


@router.post(
    "/videos/characters",
    response_model=CharacterObject,
    responses=_errors(400, 401, 429, 500, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["name", "video"],
                        "properties": {
                            "name": {"type": "string", "maxLength": characters.MAX_NAME},
                            "video": {"type": "string", "format": "binary"},
                        },
                    }
                }
            },
        }
    },
    summary="Create a character from a 2–4 s video; name it verbatim in a prompt to use it",
)
def create_character(key: CreateKey, data: OpInputDep, services: ServicesDep) -> CharacterObject:
    found = characters.create(services, key, data.fields.get("name"), data.ref.upload)
    return _character(found)


@router.get(
    "/videos/characters",
    response_model=CharacterList,
    responses=_errors(401, 429, 500, 503),
    summary="List this key's characters",
)
def list_characters(key: StatusKey, services: ServicesDep) -> CharacterList:
    return CharacterList(data=[_character(c) for c in characters.list_for_key(services, key)])


@router.get(
    "/videos/characters/{character_id}",
    response_model=CharacterObject,
    responses=_errors(401, 404, 429, 500, 503),
    summary="Retrieve a character",
)
def get_character(character_id: str, key: StatusKey, services: ServicesDep) -> CharacterObject:
    return _character(characters.get(services, key, character_id))


@router.delete(
    "/videos/characters/{character_id}",
    response_model=CharacterDeleted,
    responses=_errors(401, 404, 429, 500, 503),
    summary="Delete a character (videos already made with it are kept)",
)
def delete_character(character_id: str, key: StatusKey, services: ServicesDep) -> CharacterDeleted:
    return CharacterDeleted(id=characters.delete(services, key, character_id).id)


def _character(row: Character) -> CharacterObject:
    return CharacterObject(id=row.id, name=row.name, created_at=int(row.created_at))
