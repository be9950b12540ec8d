"""Chart geometry: nice axes, stacked heights proportional to values, labels kept as data."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from reel.api.console.charts import nice_ceiling, nice_step, paired_bars, stacked_by_day


@pytest.mark.parametrize(
    ("value", "step", "top"),
    [
        (0, 1, 1),
        (1, 1, 1),
        (5, 2, 6),
        (7, 2, 8),
        (10, 5, 10),
        (37, 10, 40),
        (2008, 1000, 3000),
        (1900, 500, 2000),
    ],
)
def test_nice_steps_for_counts(value: int, step: float, top: float) -> None:
    assert nice_step(value) == step and nice_ceiling(value) == top


def test_nice_steps_for_seconds_may_be_fractional() -> None:
    assert nice_step(0.3, whole=False) == pytest.approx(0.1)
    assert nice_ceiling(0.3, whole=False) == pytest.approx(0.3)


def test_stacked_bars_are_proportional_and_titled() -> None:
    start = date(2025, 3, 1)
    days = [(start + timedelta(days=i), {"a": i, "b": 2}) for i in range(3)]
    chart = stacked_by_day(days, ["a", "b", "<c>"], "videos")
    assert not chart.empty and chart.series == ("a", "b", "<c>")
    heights = {r.title: r.height for r in chart.rects}
    assert "2025-03-01 · a: 0 videos" not in heights  # zero values draw nothing
    assert heights["2025-03-03 · a: 2 videos"] == pytest.approx(heights["2025-03-02 · b: 2 videos"])
    assert heights["2025-03-02 · a: 1 videos"] * 2 == pytest.approx(
        heights["2025-03-03 · a: 2 videos"]
    )
    top = [t.text for t in chart.y_ticks]
    assert top == ["0", "1", "2", "3", "4"]  # max total 4, whole-number ticks
    assert [label.text for label in chart.x_labels] == ["Mar 01", "Mar 02", "Mar 03"]


def test_empty_charts_say_so() -> None:
    assert stacked_by_day([(date(2025, 1, 1), {})], ["a"], "videos").empty
    assert paired_bars([], "s").empty


def test_paired_bars() -> None:
    chart = paired_bars([("sandbox", 1.0, 3.0), ("wan", 40.0, 95.0)], "s")
    assert [r.title for r in chart.rects][:2] == [
        "sandbox · median: 1.00 s",
        "sandbox · p95: 3.00 s",
    ]
    widest = max(chart.rects, key=lambda r: r.width)
    assert widest.title == "wan · p95: 95.00 s"
    assert [t.text for t in chart.y_ticks] == ["sandbox", "wan"]
