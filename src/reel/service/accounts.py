"""Accounts: who pays. An account holds the balance, the ledger, the quotas and the tasks; it
has any number of keys, each with its own rate limits and webhook.

Quotas count UTC calendar periods: a day runs from 00:00 to 24:00 UTC, a month from the 1st at
00:00 UTC to the next 1st. What a period used is what the account's tasks created in it kept:
their charges net of refunds, and the number of those tasks not refunded. The check runs in the
transaction that charges, after the charge has locked the account's row, so concurrent creates
cannot pass a cap together.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from reel.db.models import Account, ApiKey, LedgerEntry, Task
from reel.service.clock import now
from reel.service.errors import InvalidParameter, NotFound, QuotaExceeded

#: The limits an operator sets (``None``: no limit).
LIMIT_FIELDS = ("daily_credits", "monthly_credits", "daily_videos", "creates_per_hour")


@dataclass(frozen=True, slots=True)
class Limits:
    daily_credits: int | None = None
    monthly_credits: int | None = None
    daily_videos: int | None = None
    #: Creations per hour across the account's keys (each key keeps its own limit too).
    creates_per_hour: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Periods:
    """The UTC day and month around a moment (epoch seconds)."""

    day_start: float
    next_day: float
    month_start: float
    next_month: float


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    day_credits: int
    month_credits: int
    day_videos: int
    periods: Periods


def limits_of(account: Account) -> Limits:
    return Limits(**{f: getattr(account, f) for f in LIMIT_FIELDS})


def periods(at: float) -> Periods:
    moment = datetime.fromtimestamp(at, UTC)
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    month = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    following = datetime(moment.year + (moment.month == 12), moment.month % 12 + 1, 1, tzinfo=UTC)
    return Periods(
        day.timestamp(), day.timestamp() + 86_400, month.timestamp(), following.timestamp()
    )


def get(session: Session, account_id: str) -> Account:
    row = session.get(Account, account_id)
    if row is None:
        raise NotFound(f"no account {account_id}")
    return row


def list_accounts(session: Session) -> list[tuple[Account, int, int]]:
    """Every account with its number of keys and of live keys, oldest first."""
    counts = {
        account_id: (int(total), int(live or 0))
        for account_id, total, live in session.execute(
            select(
                ApiKey.account_id,
                func.count(),
                func.sum(case((ApiKey.revoked_at.is_(None), 1), else_=0)),
            ).group_by(ApiKey.account_id)
        )
    }
    rows = session.scalars(select(Account).order_by(Account.created_at, Account.id))
    return [(a, *counts.get(a.id, (0, 0))) for a in rows]


def set_limits(session: Session, account_id: str, changes: dict[str, int | None]) -> Limits:
    """Change some limits (``None`` removes one, ``0`` forbids); returns the limits before."""
    account = get(session, account_id)
    before = limits_of(account)
    for name, value in changes.items():
        if name not in LIMIT_FIELDS:
            raise InvalidParameter(f"unknown limit {name}", param=name)
        if value is not None and value < 0:
            raise InvalidParameter(f"{name} must be zero or more", param=name)
        setattr(account, name, value)
    session.flush()
    return before


def creates_per_hour(session: Session, account_id: str) -> int | None:
    return session.scalar(select(Account.creates_per_hour).where(Account.id == account_id))


def period_usage(session: Session, account_id: str, *, at: float | None = None) -> PeriodUsage:
    """Credits kept this UTC day and month, and videos not refunded this UTC day."""
    span = periods(now() if at is None else at)
    today = Task.created_at >= span.day_start
    videos = case((LedgerEntry.kind == "charge", 1), else_=-1)
    month_credits, day_credits, day_videos = session.execute(
        select(
            func.coalesce(-func.sum(LedgerEntry.amount), 0),
            func.coalesce(-func.sum(case((today, LedgerEntry.amount), else_=0)), 0),
            func.coalesce(func.sum(case((today, videos), else_=0)), 0),
        )
        .select_from(LedgerEntry)
        .join(Task, Task.id == LedgerEntry.task_id)
        .where(
            Task.account_id == account_id,
            Task.created_at >= span.month_start,
            Task.created_at < span.next_month,
            LedgerEntry.kind.in_(("charge", "refund")),
        )
    ).one()
    return PeriodUsage(int(day_credits), int(month_credits), int(day_videos), span)


def check_quota(
    session: Session, account_id: str, *, adding_credits: int = 0, adding_videos: int = 0
) -> None:
    """Raise :class:`QuotaExceeded` when the account's usage (plus what is being added) is over
    a cap. In the charging transaction the new task is already counted (add nothing)."""
    account = get(session, account_id)
    limits = limits_of(account)
    if (
        limits.daily_credits is None
        and limits.monthly_credits is None
        and (limits.daily_videos is None)
    ):
        return
    at = now()
    used = period_usage(session, account_id, at=at)
    span = used.periods
    over = [
        (limits.daily_videos, used.day_videos + adding_videos, "videos per day", span.next_day),
        (limits.daily_credits, used.day_credits + adding_credits, "credits per day", span.next_day),
        (
            limits.monthly_credits,
            used.month_credits + adding_credits,
            "credits per month",
            span.next_month,
        ),
    ]
    for cap, total, what, turns in over:
        if cap is not None and total > cap:
            raise QuotaExceeded(
                f"Quota exceeded: this account may use {cap} {what} (UTC)",
                retry_after=max(1, math.ceil(turns - at)),
                quota=what.replace(" ", "_"),
                limit=cap,
            )
