"""Quota periods (UTC day and month, across the year's end), the monthly cap, and a long usage
statement streamed in batches whose total equals the ledger."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select

from reel.db.models import LedgerEntry, Task
from reel.service import accounts, admin, tasks
from reel.service import usage_export as statement
from reel.service.context import Services
from reel.service.errors import QuotaExceeded
from reel.types import Aspect, Mode, Tier


def _ts(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


def test_periods_are_utc_calendar_day_and_month() -> None:
    span = accounts.periods(_ts(2026, 12, 31, 23, 30))
    assert span.day_start == _ts(2026, 12, 31) and span.next_day == _ts(2027, 1, 1)
    assert span.month_start == _ts(2026, 12, 1) and span.next_month == _ts(2027, 1, 1)
    feb = accounts.periods(_ts(2028, 2, 29, 0, 0, 1))
    assert feb.next_month == _ts(2028, 3, 1) and feb.day_start == _ts(2028, 2, 29)


def _cmd(credits: int) -> tasks.NewTask:
    return tasks.NewTask(
        prompt="p",
        mode=Mode.TEXT_TO_VIDEO,
        tier=Tier.SORA2,
        aspect=Aspect.LANDSCAPE,
        duration_s=10,
        credits=credits,
    )


def test_monthly_cap_refuses_until_the_month_turns(services: Services) -> None:
    issued = admin.issue_key(services, name="monthly", credits=100)
    admin.set_limits(services, issued.account, {"monthly_credits": 10})
    with services.db.read() as session:
        key = session.get(tasks.ApiKey, issued.id)
    assert key is not None
    tasks.create(services, key, _cmd(6))
    with pytest.raises(QuotaExceeded) as refused:
        tasks.create(services, key, _cmd(6))
    moment = datetime.now(UTC).timestamp()
    until_next_month = accounts.periods(moment).next_month - moment
    assert refused.value.extra["quota"] == "credits_per_month"
    assert abs(refused.value.retry_after - until_next_month) <= 2
    assert refused.value.headers["Retry-After"] == str(refused.value.retry_after)
    tasks.create(services, key, _cmd(4))  # exactly at the cap is allowed
    with services.db.read() as session:
        assert accounts.get(session, issued.account).balance == 90
        assert accounts.period_usage(session, issued.account).month_credits == 10


def _movements(price: int, *, refunded: bool) -> list[tuple[str, int]]:
    return [("charge", -price), ("refund", price)] if refunded else [("charge", -price)]


def test_long_statement_streams_in_batches_and_totals_the_ledger(services: Services) -> None:
    issued = admin.issue_key(services, name="bulk", credits=0)
    at = datetime.now(UTC).timestamp() - 60
    n = 1203
    with services.db.write() as session:
        session.execute(
            insert(Task),
            [
                {
                    "id": f"task_bulk{i:05d}",
                    "key_id": issued.id,
                    "account_id": issued.account,
                    "status": "completed",
                    "mode": "textToVideo",
                    "tier": "sora2",
                    "model": "sandbox",
                    "aspect": "landscape",
                    "duration_s": 10,
                    "width": 8,
                    "height": 8,
                    "prompt": "p",
                    "credits": 1 + i % 3,
                    "extra": {},
                    "created_at": at + i / 1000,
                    "finished_at": at + 1,
                }
                for i in range(n)
            ],
        )
        session.execute(
            insert(LedgerEntry),
            [
                {
                    "account_id": issued.account,
                    "key_id": issued.id,
                    "task_id": f"task_bulk{i:05d}",
                    "kind": kind,
                    "amount": amount,
                    "balance_after": 0,
                    "created_at": at,
                }
                for i in range(n)
                for kind, amount in _movements(1 + i % 3, refunded=i % 7 == 0)
            ],
        )
    span = statement.parse_range(None, None, at=at + 3600)
    chunks = list(statement.stream(services.db, issued.account, span, "csv"))
    assert len(chunks) >= 3  # written out batch by batch, not as one string
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    with services.db.read() as session:
        kept = -int(
            session.scalar(
                select(func.sum(LedgerEntry.amount)).where(LedgerEntry.account_id == issued.account)
            )
            or 0
        )
    assert len(rows) == n and sum(int(r["credits"]) for r in rows) == kept
    doc = json.loads("".join(statement.stream(services.db, issued.account, span, "json")))
    assert doc["totalCredits"] == kept and len(doc["tasks"]) == n
