"""The OpenAPI document at ``/openapi.json``: both surfaces' request bodies, their error
shapes, bearer security, and links from each create to the calls that follow."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from reel.api.schemas.openai import (
    CreateVideoRequest,
    EditVideoRequest,
    ExtendVideoRequest,
    OpenAIError,
    RemixVideoRequest,
)
from reel.api.schemas.seed import CheckStatusRequest, ErrorBody, GenerateRequest

DESCRIPTION = """\
Reel speaks the Sora 2 video API contract (`/api/sora-2/*`) and OpenAI's Videos API
(`/v1/videos`) on hardware its operator controls.

Authenticate with `Authorization: Bearer <API key>` (create one with `reel keys create`).
Errors use `{"success": false, "error": "...", "errorCode": "..."}` with the contract's codes
on `/api/sora-2/*`, and OpenAI's `{"error": {"message", "type", "param", "code"}}` on `/v1/*`.
"""


def install_openapi(app: FastAPI) -> None:
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]


#: OpenAPI links: how a create's answer feeds the calls that follow (for clients, docs and
#: stateful API testing). (path, method) of the create → {link name: (operationId, how)}.
_VIDEO_ID: dict[str, object] = {"parameters": {"video_id": "$response.body#/id"}}
_TASK_ID: dict[str, object] = {"requestBody": {"taskId": "$response.body#/taskId"}}
_LINKS: dict[tuple[str, str], dict[str, tuple[str, dict[str, object]]]] = {
    ("/api/sora-2/generate", "post"): {
        "CheckStatus": ("check_status_api_sora_2_check_status_post", _TASK_ID),
        "Cancel": ("cancel_api_sora_2_cancel_post", _TASK_ID),
    },
    ("/v1/videos", "post"): {
        "Retrieve": ("retrieve_video_v1_videos__video_id__get", _VIDEO_ID),
        "Content": ("download_content_v1_videos__video_id__content_get", _VIDEO_ID),
        "Remix": ("remix_video_v1_videos__video_id__remix_post", _VIDEO_ID),
        "Cancel": ("cancel_video_v1_videos__video_id__cancel_post", _VIDEO_ID),
        "Delete": ("delete_video_v1_videos__video_id__delete", _VIDEO_ID),
    },
}


def _add_links(schema: dict[str, Any]) -> None:
    paths = schema.get("paths", {})
    for (path, method), links in _LINKS.items():
        op = paths.get(path, {}).get(method)
        if op is None:
            continue
        ok = op.get("responses", {}).get("200")
        if ok is not None:
            ok["links"] = {
                name: {"operationId": op_id, **how} for name, (op_id, how) in links.items()
            }


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (
        GenerateRequest,
        CheckStatusRequest,
        CreateVideoRequest,
        RemixVideoRequest,
        ExtendVideoRequest,
        EditVideoRequest,
    ):
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(body.pop("$defs", {}))
        schemas[model.__name__] = body
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
    openai_error_ref = {"$ref": "#/components/schemas/OpenAIError"}
    openai_error = OpenAIError.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(openai_error.pop("$defs", {}))
    schemas.setdefault("OpenAIError", openai_error)
    for path, ops in schema.get("paths", {}).items():
        openai_surface = path.startswith("/v1/")
        ref = openai_error_ref if openai_surface else error_ref
        for op in ops.values():
            if path.startswith(("/api/", "/v1/")):
                op.setdefault("security", [{"bearer": []}])
            responses = op.setdefault("responses", {})
            # FastAPI's own validation 422 never happens: bad input answers 400 in the
            # surface's error shape. Declared 422s (idempotency key reuse) stay.
            validation = responses.get("422", {}).get("content", {}).get("application/json", {})
            if validation.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]
                responses.setdefault("400", {"description": "Invalid request"})
            for status, response in responses.items():
                if status.startswith(("4", "5")) and not response.get("content"):
                    response["content"] = {"application/json": {"schema": ref}}
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _add_links(schema)
    app.openapi_schema = schema
    return schema
