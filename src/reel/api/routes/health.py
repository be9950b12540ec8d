"""Liveness and readiness for load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from reel.api.deps import ServicesDep
from reel.db.migrate import current_revision, head_revision

router = APIRouter(tags=["Health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


# HEAD answers as GET does, without a body (load balancers and `curl -I` use it).
router.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)


@router.get(
    "/readyz",
    summary="The database answers and its schema is current",
    responses={503: {"description": "Not ready"}},
)
def readyz(services: ServicesDep) -> JSONResponse:
    try:
        with services.db.read() as session:
            session.execute(text("SELECT 1"))
        schema_ok = current_revision(services.db.engine) == head_revision()
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, 503)
    if not schema_ok:
        return JSONResponse({"status": "unavailable", "reason": "schema not migrated"}, 503)
    return JSONResponse({"status": "ok"})


router.add_api_route("/readyz", readyz, methods=["HEAD"], include_in_schema=False)
