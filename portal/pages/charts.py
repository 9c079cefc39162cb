"""Charts drawn on the server as SVG geometry: no chart library, no script.

The functions return plain data (rectangles, ticks, labels) that the templates in
`templates/includes/` turn into <svg> elements. Every bar carries a title, and each
chart has a table beside it for screen readers and for copying numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    css: str


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass
class BarChart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    rects: list[Rect] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    title: str = ""


def nice_step(value: int, ticks: int = 4) -> int:
    """A whole tick step (1, 2 or 5 times a power of ten) so that `ticks` steps reach `value`."""
    if value <= ticks:
        return 1
    needed = value / ticks
    exponent = 10 ** math.floor(math.log10(needed))
    for step in (1, 2, 5, 10):
        if needed <= step * exponent:
            return step * exponent
    return 10 * exponent  # pragma: no cover - the loop always returns


def hourly_bar_chart(
    slots: list[tuple[datetime, dict[str, int]]],
    series: list[Series],
    *,
    title: str,
    width: int = 720,
    height: int = 220,
) -> BarChart:
    """Stacked bars, one per hour slot, series drawn bottom-up in the order given."""
    left, right, top, bottom = 40.0, width - 8.0, 10.0, height - 24.0
    chart = BarChart(width, height, left, right, top, bottom, series=series, title=title)
    totals = [sum(values.get(s.key, 0) for s in series) for _, values in slots]
    # Counts are whole numbers, and so is every tick of the axis.
    step = nice_step(max(totals, default=0))
    y_max = step * 4
    plot_height = bottom - top
    for i in range(5):
        chart.y_ticks.append(Tick(position=round(bottom - plot_height * i / 4, 1), label=str(step * i)))
    if not slots:
        return chart
    slot_width = (right - left) / len(slots)
    bar_width = max(slot_width * 0.72, 1.0)
    for index, (start, values) in enumerate(slots):
        x = left + index * slot_width + (slot_width - bar_width) / 2
        y = bottom
        for s in series:
            count = values.get(s.key, 0)
            if count <= 0:
                continue
            bar_height = plot_height * count / y_max
            y -= bar_height
            chart.rects.append(
                Rect(
                    x=round(x, 1),
                    y=round(y, 1),
                    width=round(bar_width, 1),
                    height=round(bar_height, 1),
                    css=s.css,
                    title=f"{start:%H}:00 to {start:%H}:59 UTC: {count} {s.label.lower()}",
                )
            )
        if index % 3 == 0:
            centre = round(left + index * slot_width + slot_width / 2, 1)
            chart.x_ticks.append(Tick(position=centre, label=f"{start:%H}h"))
    return chart


@dataclass(frozen=True)
class RateRow:
    label: str
    rate: float | None  # 0..1, None when nothing finished yet
    succeeded: int
    failed: int
    pending: int
    y: float = 0.0
    bar_width: float = 0.0


@dataclass
class RateChart:
    width: int
    height: int
    bar_max: float
    rows: list[RateRow]
    title: str


def success_rate_chart(rows: list[RateRow], *, title: str, width: int = 720, row_height: int = 56) -> RateChart:
    """Horizontal bars of success rate (0 to 100 %), one row per destination, its name above its bar."""
    bar_max = width - 80
    placed = [
        RateRow(
            label=row.label if len(row.label) <= 48 else row.label[:47] + "...",
            rate=row.rate,
            succeeded=row.succeeded,
            failed=row.failed,
            pending=row.pending,
            y=index * row_height,
            bar_width=round(bar_max * (row.rate or 0.0), 1),
        )
        for index, row in enumerate(rows)
    ]
    return RateChart(width=width, height=max(len(rows), 1) * row_height, bar_max=bar_max, rows=placed, title=title)
