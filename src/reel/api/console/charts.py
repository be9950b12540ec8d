"""Chart geometry for server-rendered SVG. Numbers in, shapes out; labels stay plain text
(the template escapes them like any other value)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

WIDTH = 640
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 12, 34


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    series: int
    title: str


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    rects: tuple[Rect, ...]
    y_ticks: tuple[Label, ...]
    x_labels: tuple[Label, ...]
    series: tuple[str, ...]
    grid: tuple[float, ...]
    left: float
    right: float
    empty: bool


def nice_step(value: float, *, ticks: int = 4, whole: bool = True) -> float:
    """A 1/2/5 × 10^n step so that ``ticks`` steps cover ``value``; whole numbers for counts."""
    raw = max(value, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return max(1.0, step) if whole else step


def nice_ceiling(value: float, *, ticks: int = 4, whole: bool = True) -> float:
    """The axis top: a whole number of nice steps at or above ``value``."""
    step = nice_step(value, ticks=ticks, whole=whole)
    return step * max(1, math.ceil(value / step - 1e-9))


def stacked_by_day(
    days: Sequence[tuple[date, Mapping[str, int]]], series: Sequence[str], unit: str
) -> Chart:
    """One column per day, stacked by series (tiers); hover titles carry the exact numbers."""
    totals = [sum(values.get(s, 0) for s in series) for _, values in days]
    step = nice_step(max(totals, default=0))
    top = nice_ceiling(max(totals, default=0))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(days))
    bar_w = max(2.0, slot * 0.7)
    rects: list[Rect] = []
    x_labels: list[Label] = []
    every = max(1, math.ceil(len(days) / 10))
    for i, (day, values) in enumerate(days):
        x = LEFT + i * slot + (slot - bar_w) / 2
        base: float = TOP + plot_h
        for index, name in enumerate(series):
            amount = values.get(name, 0)
            if amount <= 0:
                continue
            h = plot_h * amount / top
            base -= h
            title = f"{day.isoformat()} · {name}: {amount} {unit}"
            rects.append(
                Rect(round(x, 1), round(base, 1), round(bar_w, 1), round(h, 1), index, title)
            )
        if i % every == 0:
            x_labels.append(Label(round(x + bar_w / 2, 1), HEIGHT - 14, day.strftime("%b %d")))
    ticks = [step * n for n in range(round(top / step) + 1)]
    y_ticks = tuple(
        Label(LEFT - 6, round(TOP + plot_h - plot_h * t / top + 4, 1), _tick(t)) for t in ticks
    )
    grid = tuple(round(TOP + plot_h - plot_h * t / top, 1) for t in ticks)
    return Chart(
        WIDTH,
        HEIGHT,
        tuple(rects),
        y_ticks,
        tuple(x_labels),
        tuple(series),
        grid,
        LEFT,
        WIDTH - RIGHT,
        empty=not any(totals),
    )


def paired_bars(rows: Sequence[tuple[str, float, float]], unit: str) -> Chart:
    """Horizontal pairs per row (e.g. engine → median, p95)."""
    longest = max((max(a, b) for _, a, b in rows), default=0)
    step = nice_step(longest, whole=False)
    top = nice_ceiling(longest, whole=False)
    left = 120
    row_h = 44
    height = TOP + BOTTOM + row_h * max(1, len(rows))
    plot_w = WIDTH - left - RIGHT - 20  # room for the last tick's label
    rects: list[Rect] = []
    labels: list[Label] = []
    for i, (name, first, second) in enumerate(rows):
        y = TOP + i * row_h
        for j, (value, what) in enumerate(((first, "median"), (second, "p95"))):
            w = plot_w * value / top
            title = f"{name} · {what}: {value:.2f} {unit}"
            rects.append(Rect(left, y + 4 + j * 17, round(max(w, 1.0), 1), 14, j, title))
        labels.append(Label(left - 8, y + 22, name))
    ticks = [step * n for n in range(round(top / step) + 1)]
    x_ticks = tuple(
        Label(round(left + plot_w * t / top, 1), height - 14, _tick(t) + f" {unit}") for t in ticks
    )
    return Chart(
        WIDTH,
        height,
        tuple(rects),
        tuple(labels),
        x_ticks,
        ("median", "p95"),
        tuple(round(left + plot_w * t / top, 1) for t in ticks),
        left,
        WIDTH - RIGHT,
        empty=not rows,
    )


def _tick(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
