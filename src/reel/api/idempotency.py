"""The ``Idempotency-Key`` request header on create routes, over ``reel.service.idempotency``."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from fastapi import Request, Response
from sqlalchemy.orm import Session

from reel.db.models import ApiKey, Task
from reel.service import idempotency
from reel.service.context import Services
from reel.service.tasks import OnInsert

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"

Render = Callable[[Task], Mapping[str, object]]
Create = Callable[[OnInsert | None], Task]


def run(
    request: Request,
    response: Response,
    services: Services,
    key: ApiKey,
    *,
    route: str,
    canonical: object,
    create: Create,
    render: Render,
) -> dict[str, object]:
    """Create once per (key, route, Idempotency-Key): the first response is replayed after.

    Without the header this is just ``render(create(None))``. With it, the response is
    recorded in the transaction that inserts the task, and a failed request releases the key.
    """
    presented = request.headers.get(HEADER)
    if presented is None:
        return dict(render(create(None)))
    result = idempotency.begin(
        services,
        key_id=key.id,
        route=route,
        idempotency_key=idempotency.validate_key(presented),
        body_hash=idempotency.fingerprint(canonical),
    )
    if isinstance(result, idempotency.Replay):
        response.status_code = result.status
        response.headers[REPLAYED] = "true"
        replayed: dict[str, object] = json.loads(result.body)
        return replayed
    claim = result
    rendered: dict[str, object] = {}

    def on_insert(session: Session, task: Task) -> None:
        rendered.update(render(task))
        claim.complete(
            session,
            task_id=task.id,
            status=200,
            body=json.dumps(rendered, separators=(",", ":")),
        )

    try:
        create(on_insert)
    except BaseException:
        idempotency.release(services, claim)
        raise
    response.headers[REPLAYED] = "false"
    return rendered
