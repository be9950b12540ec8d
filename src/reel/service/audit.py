"""The audit log: every operator action (keys, credits, limits, retries, cancels, sign-ins) as an
append-only row with who, when, on what, and the state before and after.

Rows are only ever inserted, in the transaction of the action they record where there is one;
nothing in Reel updates or deletes them.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from reel.db.models import AuditEntry
from reel.service.clock import now

#: Who acts when the CLI runs (the operator's shell on the server's database).
CLI = "cli"
#: Who acts through the admin console (signed in with the admin token).
CONSOLE = "console"


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    before: Mapping[str, object] | None = None,
    after: Mapping[str, object] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=now(),
        actor=actor[:200],
        action=action[:40],
        target=target[:200],
        before=dict(before) if before is not None else None,
        after=dict(after) if after is not None else None,
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session,
    *,
    target: str | None = None,
    action: str | None = None,
    since: float | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Newest first."""
    query = select(AuditEntry)
    if target:
        query = query.where(AuditEntry.target == target)
    if action:
        query = query.where(AuditEntry.action == action)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    return list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))
