"""Usage for operators: videos and credits per day and tier, outcomes, generation time per engine.

Days are UTC calendar days. Credits are what the ledger says was kept: charges minus refunds,
dated by the ledger entry, so a refunded failure costs nothing on any day.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import BigInteger, ColumnElement, cast, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from reel.db.models import LedgerEntry, Task
from reel.service.clock import now
from reel.types import TaskStatus, Tier

DAY_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class DayUsage:
    """One UTC day: finished videos and credits kept, per tier."""

    day: date
    videos: dict[str, int] = field(default_factory=dict)
    credits: dict[str, int] = field(default_factory=dict)

    @property
    def total_videos(self) -> int:
        return sum(self.videos.values())

    @property
    def total_credits(self) -> int:
        return sum(self.credits.values())


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Tasks that finished in the window, by how they ended."""

    completed: int = 0
    failed: int = 0
    canceled: int = 0

    @property
    def success_rate(self) -> float | None:
        """Completed out of completed + failed (a cancel is the owner's choice, not a failure)."""
        decided = self.completed + self.failed
        return None if decided == 0 else self.completed / decided


@dataclass(frozen=True, slots=True)
class EngineTimes:
    """Seconds the engine spent on completed tasks."""

    engine: str
    count: int
    median_s: float
    p95_s: float


@dataclass(frozen=True, slots=True)
class UsageReport:
    first_day: date
    last_day: date
    tiers: tuple[str, ...]
    days: tuple[DayUsage, ...]
    outcomes: Outcomes
    outcomes_by_tier: dict[str, Outcomes]
    engines: tuple[EngineTimes, ...]

    @property
    def total_videos(self) -> int:
        return sum(d.total_videos for d in self.days)

    @property
    def total_credits(self) -> int:
        return sum(d.total_credits for d in self.days)

    def tier_totals(self) -> dict[str, tuple[int, int]]:
        """tier → (videos, credits) over the whole window."""
        totals = {}
        for t in self.tiers:
            videos = sum(d.videos.get(t, 0) for d in self.days)
            totals[t] = (videos, sum(d.credits.get(t, 0) for d in self.days))
        return totals


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0–100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _day_number(
    column: InstrumentedAttribute[float] | InstrumentedAttribute[float | None],
) -> ColumnElement[int]:
    return cast(column, BigInteger) // DAY_SECONDS


def _to_date(day_number: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day_number))


def usage_report(session: Session, *, days: int = 14, until: float | None = None) -> UsageReport:
    """The last ``days`` UTC days, today included."""
    if days < 1:
        raise ValueError("days must be at least 1")
    end = now() if until is None else until
    last = datetime.fromtimestamp(end, UTC).date()
    first = last - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()

    videos: dict[date, dict[str, int]] = defaultdict(dict)
    day_col = _day_number(Task.finished_at)
    for day_no, tier, count in session.execute(
        select(day_col, Task.tier, func.count())
        .where(
            Task.status == TaskStatus.COMPLETED, Task.finished_at >= since, Task.finished_at <= end
        )
        .group_by(day_col, Task.tier)
    ):
        videos[_to_date(day_no)][tier] = int(count)

    credits: dict[date, dict[str, int]] = defaultdict(dict)
    entry_day = _day_number(LedgerEntry.created_at)
    for day_no, tier, amount in session.execute(
        select(entry_day, Task.tier, func.sum(LedgerEntry.amount))
        .join(Task, Task.id == LedgerEntry.task_id)
        .where(
            LedgerEntry.kind.in_(("charge", "refund")),
            LedgerEntry.created_at >= since,
            LedgerEntry.created_at <= end,
        )
        .group_by(entry_day, Task.tier)
    ):
        credits[_to_date(day_no)][tier] = -int(amount or 0)

    by_tier: dict[str, dict[str, int]] = defaultdict(dict)
    for tier, status, count in session.execute(
        select(Task.tier, Task.status, func.count())
        .where(Task.finished_at >= since, Task.finished_at <= end)
        .group_by(Task.tier, Task.status)
    ):
        by_tier[tier][status] = int(count)
    outcomes_by_tier = {t: _outcomes(c) for t, c in sorted(by_tier.items())}
    total: dict[str, int] = defaultdict(int)
    for counts in by_tier.values():
        for status, count in counts.items():
            total[status] += count

    known = [t.value for t in Tier]
    seen = {t for d in (videos, credits) for per in d.values() for t in per} | set(by_tier)
    tiers = tuple(known + sorted(seen - set(known)))
    span = tuple(
        DayUsage(day, dict(videos.get(day, {})), dict(credits.get(day, {})))
        for day in (first + timedelta(days=i) for i in range(days))
    )
    return UsageReport(
        first_day=first,
        last_day=last,
        tiers=tiers,
        days=span,
        outcomes=_outcomes(total),
        outcomes_by_tier=outcomes_by_tier,
        engines=tuple(engine_times(session, since=since, until=end)),
    )


def _outcomes(counts: dict[str, int]) -> Outcomes:
    return Outcomes(
        completed=counts.get(TaskStatus.COMPLETED, 0),
        failed=counts.get(TaskStatus.FAILED, 0),
        canceled=counts.get(TaskStatus.CANCELED, 0),
    )


def engine_times(session: Session, *, since: float, until: float) -> list[EngineTimes]:
    """Median and p95 engine seconds per engine, over tasks completed in the window."""
    samples: dict[str, list[float]] = defaultdict(list)
    for engine, seconds in session.execute(
        select(Task.engine, Task.generation_seconds).where(
            Task.status == TaskStatus.COMPLETED,
            Task.generation_seconds.is_not(None),
            Task.finished_at >= since,
            Task.finished_at <= until,
        )
    ):
        samples[engine or "unknown"].append(float(seconds or 0.0))
    return [
        EngineTimes(name, len(v), statistics.median(v), percentile(v, 95))
        for name, v in sorted(samples.items())
    ]


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """One key's tasks by status and the credits its tasks hold (completed or still running)."""

    by_status: dict[str, int]
    credits_spent: int

    @property
    def active(self) -> int:
        return sum(self.by_status.get(s, 0) for s in (TaskStatus.QUEUED, TaskStatus.RUNNING))


def key_usage(session: Session, key_id: str) -> KeyUsage:
    return _usage(session, Task.key_id == key_id)


def account_usage(session: Session, account_id: str) -> KeyUsage:
    """The same for every task of an account, whichever key created it."""
    return _usage(session, Task.account_id == account_id)


def _usage(session: Session, owned: ColumnElement[bool]) -> KeyUsage:
    counts = dict(
        session.execute(select(Task.status, func.count()).where(owned).group_by(Task.status)).all()
    )
    charged = (TaskStatus.COMPLETED, TaskStatus.QUEUED, TaskStatus.RUNNING)
    spent = session.scalar(
        select(func.coalesce(func.sum(Task.credits), 0)).where(owned, Task.status.in_(charged))
    )
    return KeyUsage({str(k): int(v) for k, v in counts.items()}, int(spent or 0))
