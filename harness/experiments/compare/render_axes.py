"""What an axis of a compare adds to its report, for every axis alike (environments: env_report;
variants: variant_report): each contender at each value against the first value, in every
measure, as a table and as a chart of the headline's cost with its interval."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.measures.registry import get_measure
from harness.render.tables import change_cell, estimate_cell

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from harness.experiments.compare.axes import AxisRow
    from harness.experiments.compare.result import CompareReport
    from harness.measures.measure import Measure


def _measures(report: CompareReport) -> list[Measure]:
    return [m for name in report.measures if (m := get_measure(name)).in_table]


def axis_columns(report: CompareReport, axis: str) -> tuple[str, ...]:
    measures = _measures(report)
    return (
        "set",
        axis,
        *(f"{m.per_unit} ({m.short})" for m in measures),
        *(f"change {m.unit} ({m.short})" for m in measures),
        "rounds",
    )


def axis_body(report: CompareReport, rows: Sequence[AxisRow]) -> list[list[str]]:
    """Each contender at each value: its cost, and its change from the first value's, paired
    round by round."""
    measures = _measures(report)
    return [
        [
            row.name,
            row.value,
            *(estimate_cell(row.entry.cost(m.name), m.digits) for m in measures),
            *(change_cell(row.difference(m.name), m.digits) for m in measures),
            str(len(row.entry.ok_rounds)),
        ]
        for row in rows
    ]


def axis_chart(
    report: CompareReport,
    rows: Sequence[AxisRow],
    values: Sequence[str],
    title: str,
    said: str,
    path: Path,
) -> Path | None:
    """Each contender's headline cost at each value, side by side, with 95% error bars where
    there is an interval, and its change from the first value written over its bar."""
    if not rows:
        return None
    import matplotlib.pyplot as plt

    from harness.render.charts import category_labels, chart_style, literal, save_laid_out, titles

    names = list(dict.fromkeys(row.name for row in rows))
    with chart_style():
        fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2), 4.6))
        for k, value in enumerate(values):
            _value_bars(ax, report.headline, [_row(rows, n, value) for n in names], k, values)
        category_labels(ax, names)
        ax.set_ylabel(f"{report.headline.unit} per request")
        titles(ax, title, literal(f"median of the rounds, error bars: 95% interval; {said}"))
        ax.legend(fontsize=8, frameon=False)
        return save_laid_out(fig, path)


def _row(rows: Sequence[AxisRow], name: str, value: str) -> AxisRow | None:
    return next((r for r in rows if r.name == name and r.value == value), None)


def _value_bars(
    ax: Axes,
    measure: Measure,
    by_name: list[AxisRow | None],
    k: int,
    values: Sequence[str],
) -> None:
    """The k-th value's bars, one per contender (by_name: its row at that value, if it ran
    there), each with its change from the first value written over it."""
    from harness.render.charts import COLORS, estimate_bars, literal, side_by_side

    width = 0.8 / len(values)
    xs, costs = [], []
    for i, row in enumerate(by_name):
        cost = row.entry.cost(measure.name) if row else None
        if row is None or cost is None:
            continue
        xs.append(i + side_by_side(k, len(values), width))
        costs.append(cost)
        change = row.difference(measure.name)
        if change is not None:
            ax.annotate(
                change.format_change(measure.digits, not_significant=" (n.s.)"),
                (xs[-1], cost.high or cost.median),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
    estimate_bars(
        ax,
        xs,
        costs,
        width,
        color=COLORS[k % len(COLORS)],
        alpha=0.85,
        label=literal(values[k]),
    )
