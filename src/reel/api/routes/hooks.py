"""Callbacks from upstream video APIs: a signed link per task that only wakes its worker."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from reel.api.deps import ServicesDep
from reel.service import lifecycle
from reel.service.errors import NotFound
from reel.storage.signing import verify_callback

router = APIRouter(tags=["Upstream callbacks"])


@router.post(
    "/hooks/fal/{task_id}",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Noted; the worker following the task asks fal.ai for the news"},
        404: {"description": "Unknown link or bad signature"},
    },
    summary="fal.ai webhook for a task Reel submitted with a callback link",
)
def fal_webhook(task_id: str, services: ServicesDep, sig: str = "") -> Response:
    """The body is never read: a call only makes the task's worker poll fal.ai at once, so a
    forged or replayed call can at most cause an early status request."""
    if not verify_callback(services.settings.signing_key, task_id, sig):
        raise NotFound()
    with services.db.write() as session:
        lifecycle.note_upstream_callback(session, task_id)
    return Response(status_code=204)
