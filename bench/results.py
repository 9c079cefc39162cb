"""Figures into a markdown table: what `make bench` prints and writes to bench/RESULTS.md."""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between ranks; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Row:
    scenario: str
    measure: str
    portal: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    met: bool | None = None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *args, **kwargs) -> Row:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        return row

    def note(self, text: str) -> None:
        self.notes.append(text)


def fmt_rate(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.0f}/s"


def fmt_ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.2f}"


def fmt_mb(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.0f} MB"


def _met(value: bool | None) -> str:
    return {True: "yes", False: "**no**", None: ""}[value]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def results_table(rows: Sequence[Row]) -> str:
    header = ["Scenario", "Measure", "Portal", "Baseline (same run)", "Ratio", "Target", "Met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        cells = [row.scenario, row.measure, row.portal, row.baseline, row.ratio, row.target, _met(row.met)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def machine_line(*, cores: int, date: str, duration_s: float, load_before: float) -> str:
    return (
        f"Measured {date} on {cores} cores ({platform.machine()}, Python {platform.python_version()}, "
        f"load average before the run {load_before:.2f}); the whole run took {duration_s:.0f} s."
    )


def results_document(report: Report, *, cores: int, date: str, duration_s: float, load_before: float) -> str:
    parts = [
        "# Benchmark results",
        "",
        "Written by `make bench` (bench/run.py); see the README's Benchmarks section for what each",
        "scenario measures. Every baseline was measured in the same run, on the same machine.",
        "",
        machine_line(cores=cores, date=date, duration_s=duration_s, load_before=load_before),
        "",
        results_table(report.rows),
    ]
    if report.notes:
        parts += ["", "Notes:", ""] + [f"- {note}" for note in report.notes]
    return "\n".join(parts) + "\n"
