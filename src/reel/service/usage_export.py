"""An account's usage statement: one row per task created in a time range, with the credits its
task kept (its charge net of its refund, read from the ledger), streamed in CSV or JSON.

Rows are read in batches (``yield_per``), so a long range never sits in memory whole; the sum
of the rows' credits is what the ledger kept for those tasks.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reel.db.models import LedgerEntry, Task
from reel.db.session import Database
from reel.service.errors import InvalidParameter

COLUMNS = (
    "taskId",
    "createdAt",
    "finishedAt",
    "tier",
    "model",
    "durationSeconds",
    "status",
    "credits",
    "keyId",
)
FORMATS = ("csv", "json")
_BATCH = 500


@dataclass(frozen=True, slots=True)
class Range:
    """``since`` inclusive, ``until`` exclusive (epoch seconds)."""

    since: float
    until: float


def parse_moment(value: str, *, param: str, end: bool = False) -> float:
    """``YYYY-MM-DD`` (a UTC day; as an end, the whole day is included) or an ISO 8601 time
    (UTC unless it names an offset)."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return (start + timedelta(days=1) if end else start).timestamp()
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidParameter(
            f"{param} must be a date (YYYY-MM-DD) or an ISO 8601 time", param=param
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_range(since: str | None, until: str | None, *, at: float) -> Range:
    """Defaults: from the first day of the current UTC month until now."""
    if since:
        start = parse_moment(since, param="from")
    else:
        today = datetime.fromtimestamp(at, UTC)
        start = datetime(today.year, today.month, 1, tzinfo=UTC).timestamp()
    stop = parse_moment(until, param="to", end=True) if until else at
    if stop <= start:
        raise InvalidParameter("to must be after from", param="to")
    return Range(start, stop)


def _iso(ts: float | None) -> str | None:
    return (
        None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
    )


def _query(account_id: str, span: Range):
    kept = (
        select(LedgerEntry.task_id, (-func.sum(LedgerEntry.amount)).label("kept"))
        .where(LedgerEntry.kind.in_(("charge", "refund")), LedgerEntry.task_id.is_not(None))
        .group_by(LedgerEntry.task_id)
        .subquery()
    )
    return (
        select(
            Task.id,
            Task.created_at,
            Task.finished_at,
            Task.tier,
            Task.model,
            Task.duration_s,
            Task.status,
            func.coalesce(kept.c.kept, 0),
            Task.key_id,
        )
        .outerjoin(kept, kept.c.task_id == Task.id)
        .where(
            Task.account_id == account_id,
            Task.created_at >= span.since,
            Task.created_at < span.until,
        )
        .order_by(Task.created_at, Task.id)
    )


def rows(session: Session, account_id: str, span: Range) -> Iterator[dict[str, object]]:
    for row in session.execute(_query(account_id, span).execution_options(yield_per=_BATCH)):
        task_id, created, finished, tier, model, duration, status, credits, key_id = row
        yield {
            "taskId": task_id,
            "createdAt": _iso(created),
            "finishedAt": _iso(finished),
            "tier": tier,
            "model": model,
            "durationSeconds": duration,
            "status": status,
            "credits": int(credits),
            "keyId": key_id,
        }


def stream(db: Database, account_id: str, span: Range, fmt: str) -> Iterator[str]:
    """The statement as text chunks: CSV with a header row, or one JSON document
    ``{"accountId", "from", "to", "tasks": [...], "totalCredits"}``."""
    if fmt not in FORMATS:
        raise InvalidParameter("format must be csv or json", param="format")
    with db.read() as session:
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            for n, item in enumerate(rows(session, account_id, span), 1):
                writer.writerow({k: "" if v is None else v for k, v in item.items()})
                if n % _BATCH == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue()
            return
        head = {"accountId": account_id, "from": _iso(span.since), "to": _iso(span.until)}
        yield json.dumps(head)[:-1] + ', "tasks": ['
        total = 0
        for n, item in enumerate(rows(session, account_id, span)):
            total += int(item["credits"])  # type: ignore[call-overload]
            yield ("," if n else "") + json.dumps(item)
        yield f'], "totalCredits": {total}}}'
