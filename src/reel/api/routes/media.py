"""Signed, expiring media URLs served from local storage (range requests supported)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from reel.api.deps import ServicesDep
from reel.service.errors import Expired, NotFound, ReelError
from reel.storage import Storage
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
def media(key: str, exp: int, sig: str, services: ServicesDep) -> Response:
    storage = services.storage
    if not isinstance(storage, LocalStorage) or not verify(
        services.settings.signing_key, key, exp, sig
    ):
        raise NotFound()
    if exp < time.time():
        raise Expired()
    return file_response(storage, key)


# HEAD: the same checks and headers (size, type, ranges), no body.
router.add_api_route("/media/{key:path}", media, methods=["HEAD"], include_in_schema=False)


#: Lifetime of the presigned link a download route redirects to on object storage.
_REDIRECT_TTL = 300


def file_response(storage: Storage, key: str, *, missing: ReelError | None = None) -> Response:
    """A stored file, served with range support; ``missing`` (default 404) when it is gone.

    Local files are streamed from here; objects in S3-compatible storage are served by the
    bucket itself, through a short-lived presigned link (clients follow the 307)."""
    if not isinstance(storage, LocalStorage):
        if not storage.exists(key):
            raise missing or NotFound()
        return RedirectResponse(storage.url(key, base_url="", expires_in=_REDIRECT_TTL), 307)
    path = storage.path(key)
    if not path.is_file():
        raise missing or NotFound()
    return FileResponse(
        path,
        media_type=_TYPES.get(path.suffix, "application/octet-stream"),
        # Browsers must take the type as sent: a stored file is never sniffed into HTML.
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
