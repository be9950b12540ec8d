"""Signed, expiring media URLs served from local storage (range requests supported)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import FileResponse

from reel.api.deps import ServicesDep
from reel.service.errors import Expired, NotFound
from reel.storage.local import LocalStorage
from reel.storage.signing import verify

router = APIRouter(tags=["Media"])

_TYPES = {".mp4": "video/mp4", ".webp": "image/webp", ".jpg": "image/jpeg", ".png": "image/png"}


@router.get(
    "/media/{key:path}",
    response_class=FileResponse,
    responses={
        200: {"content": {"video/mp4": {}, "image/webp": {}, "image/jpeg": {}}},
        404: {"description": "Unknown file or bad signature"},
        410: {"description": "The link has expired"},
    },
    summary="A stored video or preview, through a signed link",
)
def media(key: str, exp: int, sig: str, services: ServicesDep) -> FileResponse:
    storage = services.storage
    if not isinstance(storage, LocalStorage) or not verify(
        services.settings.signing_key, key, exp, sig
    ):
        raise NotFound()
    if exp < time.time():
        raise Expired()
    path = storage.path(key)
    if not path.is_file():
        raise NotFound()
    return FileResponse(
        path,
        media_type=_TYPES.get(path.suffix, "application/octet-stream"),
        headers={"Cache-Control": "private, max-age=3600"},
    )
