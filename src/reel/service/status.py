"""check-status in one statement: the key by its token, its account's task, the queue place.

Polling is the contract's hot path (every client asks every few seconds, for minutes per video),
so it is one Core SELECT with no ORM objects: the key rows sharing the token's lookup prefix,
each outer-joined to the requested task when that key's account owns it, plus the number of
tasks ahead in its model's queue, counted (by the claim index) only when the task is queued. The
key row is read on every request, so a revoked key is refused at once.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

from sqlalchemy import and_, bindparam, case, func, or_, select

from reel.db.models import ApiKey, Task
from reel.service import keys
from reel.service.errors import LoginRequired
from reel.types import TaskStatus

if TYPE_CHECKING:
    from reel.db.session import Database

__all__ = ["Poll", "poll"]

_K: Final = ApiKey.__table__
_T: Final = Task.__table__
_AHEAD: Final = _T.alias("ahead")

_POSITION: Final = case(
    (
        _T.c.status == TaskStatus.QUEUED,
        select(func.count())
        .select_from(_AHEAD)
        .where(
            _AHEAD.c.status == TaskStatus.QUEUED,
            _AHEAD.c.model == _T.c.model,
            or_(
                _AHEAD.c.priority > _T.c.priority,
                and_(_AHEAD.c.priority == _T.c.priority, _AHEAD.c.created_at < _T.c.created_at),
            ),
        )
        .scalar_subquery()
        + 1,
    ),
    else_=None,
)

_STATEMENT: Final = (
    select(
        _K.c.id.label("_key_id"),
        _K.c.key_hash.label("_key_hash"),
        _K.c.revoked_at.label("_key_revoked_at"),
        *_T.c,
        _POSITION.label("_queue_position"),
    )
    .select_from(
        _K.outerjoin(
            _T,
            and_(
                _T.c.id == bindparam("task_id"),
                _T.c.account_id == _K.c.account_id,
                _T.c.deleted_at.is_(None),
            ),
        )
    )
    .where(_K.c.prefix == bindparam("prefix"))
)


@dataclass(frozen=True, slots=True)
class Poll:
    key_id: str
    #: The task's row (its columns under the ORM attribute names); ``None``: not this key's
    #: account's.
    task: Task | None
    #: 1 for the next task its model's workers will take; ``None`` unless queued.
    queue_position: int | None


def poll(db: Database, token: str | None, task_id: str | None) -> Poll:
    """The live key presenting ``token`` and its task ``task_id`` (``None``: key only).

    Raises :class:`LoginRequired` for a missing, unknown or revoked key, whatever the task.
    """
    found = keys.lookup(token)
    if found is None:
        raise LoginRequired()
    prefix, digest = found
    with db.read() as session:
        rows = session.execute(_STATEMENT, {"prefix": prefix, "task_id": task_id}).all()
    match = None
    for row in rows:
        if hmac.compare_digest(row._key_hash, digest):
            match = row
    if match is None or match._key_revoked_at is not None:
        raise LoginRequired("Invalid or revoked API key")
    if match.id is None:
        return Poll(match._key_id, None, None)
    # A Row reads like the ORM object for every column, which is all presenting needs.
    return Poll(match._key_id, cast(Task, match), match._queue_position)
