"""Usage aggregates: per day and tier, outcomes, engine timings."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from reel.service.context import Services
from reel.service.usage import percentile, usage_report
from reel.types import TaskStatus, Tier
from tests.factories import make_key
from tests.service.helpers import finish, submit

DAY1 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC).timestamp()
DAY2 = datetime(2025, 3, 11, 23, 59, tzinfo=UTC).timestamp()
NOW = datetime(2025, 3, 12, 8, 0, tzinfo=UTC).timestamp()


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95
    assert percentile([3.0], 95) == 3.0
    assert percentile([5.0, 1.0, 9.0], 95) == 9.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_report_per_day_tier_outcomes_and_engines(services: Services) -> None:
    key = make_key(services, credits=1000).id
    a = submit(services, key, at=DAY1)  # sora2 10 s = 4 credits, completes on day 1
    finish(services, a, TaskStatus.COMPLETED, at=DAY1 + 60, seconds=2.0)
    b = submit(services, key, tier=Tier.PRO_STANDARD, at=DAY1)  # 60 credits, fails: refunded
    finish(services, b, TaskStatus.FAILED, at=DAY1 + 90)
    for seconds in (1.0, 3.0, 10.0):  # three sora2 15 s on day 2, 8 credits each
        t = submit(services, key, duration_s=15, at=DAY2 - 100)
        finish(services, t, TaskStatus.COMPLETED, at=DAY2, seconds=seconds, engine="wan")
    c = submit(services, key, at=DAY2 - 50)
    finish(services, c, TaskStatus.CANCELED, at=DAY2)
    submit(services, key, at=NOW - 10)  # still queued, charged today: 4 credits

    with services.db.read() as session:
        report = usage_report(session, days=3, until=NOW)
    assert [d.day for d in report.days] == [date(2025, 3, 10), date(2025, 3, 11), date(2025, 3, 12)]
    day1, day2, today = report.days
    assert day1.videos == {"sora2": 1} and day1.credits == {"sora2": 4, "sora2-pro-standard": 0}
    assert day2.videos == {"sora2": 3} and day2.credits == {"sora2": 24}
    assert today.videos == {} and today.credits == {"sora2": 4}
    assert report.total_videos == 4 and report.total_credits == 32
    assert report.tiers[:3] == ("sora2", "sora2-pro-standard", "sora2-pro-high")
    assert report.tier_totals()["sora2"] == (4, 32)
    assert report.outcomes.completed == 4 and report.outcomes.failed == 1
    assert report.outcomes.canceled == 1
    assert report.outcomes.success_rate == pytest.approx(0.8)
    assert report.outcomes_by_tier["sora2-pro-standard"].success_rate == 0.0
    engines = {e.engine: e for e in report.engines}
    assert engines["sandbox"].count == 1 and engines["sandbox"].median_s == 2.0
    assert engines["wan"].count == 3 and engines["wan"].median_s == 3.0
    assert engines["wan"].p95_s == 10.0


def test_report_window_excludes_older_days(services: Services) -> None:
    key = make_key(services, credits=100).id
    t = submit(services, key, at=DAY1)
    finish(services, t, TaskStatus.COMPLETED, at=DAY1, seconds=1.0)
    with services.db.read() as session:
        report = usage_report(session, days=1, until=NOW)
    assert report.total_videos == 0 and report.total_credits == 0
    assert report.outcomes.success_rate is None and report.engines == ()
