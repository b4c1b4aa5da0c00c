"""Bar geometry for the server-rendered SVG chart (the template draws it). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str   # under the bar (every few bars, so they do not overlap)
    title: str   # the tooltip: the week and its count
    count: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    top: int     # the value of the highest gridline
    baseline: float


def weekly_bars(points: list[tuple[date, int]], *, width: int = 720, height: int = 180, label_every: int = 4) -> Chart:
    margin_bottom, margin_top = 22.0, 12.0
    plot_height = height - margin_bottom - margin_top
    top = max((count for _, count in points), default=0) or 1
    slot = width / max(len(points), 1)
    bars = []
    for index, (week, count) in enumerate(points):
        bar_height = plot_height * count / top
        bars.append(Bar(
            x=round(index * slot + slot * 0.1, 1), y=round(margin_top + plot_height - bar_height, 1),
            width=round(slot * 0.8, 1), height=round(bar_height, 1),
            label=week.strftime("%-d %b") if index % label_every == 0 else "",
            title=f"week of {week.isoformat()}: {count} pickup{'s' if count != 1 else ''}", count=count))
    return Chart(width=width, height=height, bars=bars, top=top, baseline=margin_top + plot_height)
