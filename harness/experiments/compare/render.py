"""What compare writes: the table (terminal and Markdown), compare.json, overhead.png, diffs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from harness.experiments.compare.render_notes import notes, shows_estimates
from harness.load.files import write_atomic, write_json
from harness.measures.measure import Measure
from harness.measures.registry import get_measure
from harness.render.tables import Section, change_cell, estimate_cell, markdown_table, rich_tables

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from harness.experiments.compare.contenders import Entry
    from harness.experiments.compare.result import CompareReport
    from harness.load.results import SweepResult


def _measures(report: CompareReport) -> list[Measure]:
    """The measures the compare table has columns for (a measure's other figures are in their
    own tables)."""
    return [m for name in report.measures if (m := get_measure(name)).in_table]


ESTIMATE_COLUMNS = ("≈ µs/req (est.)", "≈ overhead µs (est.)")


def columns(report: CompareReport) -> tuple[str, ...]:
    """The table's columns: each measure's cost, then each measure's overhead, headline first;
    the headline's estimate in µs where it has one."""
    measures, swept = _measures(report), _swept(report)
    return (
        "set",
        *(("peak QPS", "% of baseline") if swept else ()),
        *(f"{m.per_unit} ({m.short})" for m in measures),
        *(f"overhead {m.unit} ({m.short})" for m in measures),
        *(ESTIMATE_COLUMNS if shows_estimates(report) else ()),
        "vs",
        "rounds",
        *(("p99 ms",) if swept else ()),
        "flags",
    )


def _swept(report: CompareReport) -> bool:
    """The rounds were wrk sweeps: each has a peak QPS and its p99 (not the open model's)."""
    return report.headline.procedure == "wrk"


def rows(report: CompareReport) -> list[list[str]]:
    measures, swept = _measures(report), _swept(report)
    table = []
    for entry in report.entries:
        peak = [
            f"{entry.peak_qps.median:,.0f}" if entry.peak_qps else "—",
            f"{entry.pct_of_baseline:.1f}%" if entry.pct_of_baseline is not None else "—",
        ]
        table.append(
            [
                entry.label,
                *(peak if swept else ()),
                *(estimate_cell(entry.cost(m.name), m.digits) for m in measures),
                *(change_cell(entry.overhead(m.name), m.digits) for m in measures),
                *(_estimates(report, entry) if shows_estimates(report) else ()),
                entry.reference.label if entry.reference else "—",
                str(len(entry.ok_rounds)),
                *([f"{entry.p99_ms:.2f}" if entry.p99_ms is not None else "—"] if swept else ()),
                "; ".join(report.flags(entry)),
            ]
        )
    return table


def _estimates(report: CompareReport, entry: Entry) -> list[str]:
    headline = report.measures[0]
    return [
        estimate_cell(report.estimated_us(entry, entry.cost(headline))),
        change_cell(report.estimated_us(entry, entry.overhead(headline))),
    ]


def title(report: CompareReport) -> str:
    servers = f" on {', '.join(report.servers)}" if report.servers else ""
    return f"compare: {', '.join(report.targets)}{servers}"


def server_columns(report: CompareReport) -> tuple[str, ...]:
    measures = _measures(report)
    return (
        "server",
        "raw app",
        "peak QPS",
        "QPS vs first",
        *(f"{m.per_unit} ({m.short})" for m in measures),
        *(f"vs first {m.unit} ({m.short})" for m in measures),
    )


def server_rows(report: CompareReport) -> list[list[str]]:
    """The servers against each other on the raw app: each server's cost, and its difference
    from the first server's, paired round by round."""
    measures = _measures(report)
    table = []
    for row in report.server_rows:
        entry = row.entry
        ratio = row.qps_ratio
        table.append(
            [
                row.server,
                row.app,
                f"{entry.peak_qps.median:,.0f}" if entry.peak_qps else "—",
                f"{ratio:.2f}×" if ratio is not None else "—",
                *(estimate_cell(entry.cost(m.name), m.digits) for m in measures),
                *(change_cell(row.difference(m.name), m.digits) for m in measures),
            ]
        )
    return table


def server_title(report: CompareReport) -> str:
    first = report.servers[0] if report.servers else "the first server"
    return f"servers on the raw app, against {first}"


LEFT = ("set", "vs", "flags", "server", "raw app")


def _rich(heading: str, columns: Sequence[str], rows: list[list[str]]) -> Table:
    """A table of the terminal: words left, figures right."""
    table = Table(title=heading, title_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column in LEFT else "right")
    for row in rows:
        table.add_row(*row)
    return table


def rich_table(report: CompareReport) -> Table:
    return _rich(title(report), columns(report), rows(report))


def section_tables(report: CompareReport) -> list[Table]:
    """A measure's own tables (latency: one per rate, and the capacity at the SLO)."""
    from harness.experiments.compare.render_latency import latency_sections

    return rich_tables(latency_sections(report), ("set", "vs"))


def server_table(report: CompareReport) -> Table:
    return _rich(server_title(report), server_columns(report), server_rows(report))


def markdown(report: CompareReport) -> str:
    from harness.experiments.compare.render_environments import env_sections
    from harness.experiments.compare.render_latency import latency_sections
    from harness.experiments.compare.render_variants import variant_sections

    lines = [f"# {title(report)}", "", *markdown_table(columns(report), rows(report), LEFT), ""]
    lines += _md_sections(latency_sections(report), ("set", "vs"))
    if report.server_rows:
        server = (server_title(report), server_columns(report), server_rows(report))
        lines += _md_sections([server], LEFT)
    lines += _md_sections(env_sections(report), (*LEFT, "environment", "interpreter"))
    lines += _md_sections(variant_sections(report), (*LEFT, "variant", "variables"))
    return "\n".join([*lines, *(f"- {line}" for line in notes(report)), ""])


def _md_sections(sections: Iterable[Section], left: tuple[str, ...]) -> list[str]:
    return [
        line
        for name, cols, body in sections
        for line in (f"## {name}", "", *markdown_table(cols, body, left), "")
    ]


def _clip_intervals(ax: Any, ends: list[tuple[float, float, float, float]]) -> bool:
    """Keep the bars readable when a few intervals are far wider than every median (two or
    three noisy rounds): the axes stop at 2.5x the largest median and each cut end is written at
    the edge, so nothing is hidden. True when anything was cut."""
    if not ends:
        return False
    extent = max(max(abs(m) for _, m, _, _ in ends), 1.0)
    low = min(min(lo for _, _, lo, _ in ends), 0.0)
    high = max(max(hi for _, _, _, hi in ends), 0.0)
    bottom, top = max(low, -2.5 * extent), min(high, 2.5 * extent)
    if (bottom, top) == (low, high):
        return False
    pad = 0.08 * (top - bottom)
    ax.set_ylim(bottom - pad, top + pad)
    for x, _, lo, hi in ends:
        if hi > top:
            ax.text(x, top + pad, f"↑{hi:,.0f}", ha="center", va="top", fontsize=7)
        if lo < bottom:
            ax.text(x, bottom - pad, f"↓{lo:,.0f}", ha="center", va="bottom", fontsize=7)
    return True


def rounds_used(entries: list[Entry], measures: tuple[str, ...] = ("cpu", "qps")) -> str:
    """`3`, or `3-7` where --precision gave some sets more rounds than others."""
    used = sorted(
        {
            est.n
            for e in entries
            if (est := next((o for m in measures if (o := e.overhead(m)) is not None), None))
        }
    )
    if not used:
        return "0"
    return f"{used[0]}" if len(used) == 1 else f"{used[0]}-{used[-1]}"


def _interval_said(entries: list[Entry], measures: tuple[str, ...]) -> str:
    """The chart's word on its error bars: none drawn where a set had a single round."""
    rounds = rounds_used(entries, measures)
    if rounds == "1":
        return "1 round: no interval"
    if rounds.startswith("1-"):
        return f"median of {rounds} paired rounds, error bars: 95% interval (none on 1 round)"
    return f"median of {rounds} paired rounds, error bars: 95% interval"


def overhead_chart(report: CompareReport, path: Path) -> Path | None:
    """Bars of per-request overhead with 95% error bars, the measures side by side (on one axis
    when they share a unit)."""
    measures = [m for m in _measures(report) if m.unit == report.headline.unit]
    measured = [e for e in report.entries if any(e.overhead(m.name) for m in measures)]
    if not measured:
        return None
    import matplotlib.pyplot as plt

    from harness.render.charts import chart_style, save_laid_out

    with chart_style():
        fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(measured) + 2), 4.6))
        ends = _overhead_bars(ax, measured, measures)
        ax.axhline(0, color="#333333", linewidth=0.8)
        clipped = _clip_intervals(ax, ends)
        _overhead_labels(ax, report, measured, clipped)
        return save_laid_out(fig, path)


def _overhead_bars(
    ax: Axes, measured: list[Entry], measures: list[Measure]
) -> list[tuple[float, float, float, float]]:
    """Each set's overhead in each measure, the measures side by side; each bar's x, median,
    low and high (its median alone for one round, which has no interval), to clip by."""
    from harness.render.charts import COLORS, estimate_bars, side_by_side

    width = 0.76 / len(measures)
    ends: list[tuple[float, float, float, float]] = []
    for k, measure in enumerate(measures):
        offset = side_by_side(k, len(measures), width)
        placed = [
            (i + offset, est)
            for i, entry in enumerate(measured)
            if (est := entry.overhead(measure.name)) is not None
        ]
        for x, est in placed:
            if est.low is not None and est.high is not None:
                ends.append((x, est.median, est.low, est.high))
            else:
                ends.append((x, est.median, est.median, est.median))
        estimate_bars(
            ax,
            [x for x, _ in placed],
            [est for _, est in placed],
            width,
            color=COLORS[k % len(COLORS)],
            alpha=0.85,
            label=measure.title,
        )
    return ends


def _overhead_labels(ax: Axes, report: CompareReport, measured: list[Entry], clipped: bool) -> None:
    """Each set named under its bars with the set it is measured against, the unit, what the
    error bars are, and the legend."""
    from harness.render.charts import category_labels, literal, titles

    category_labels(
        ax, [f"{e.label}\nvs {e.reference.label}" if e.reference else e.label for e in measured]
    )
    ax.set_ylabel(f"overhead, {report.headline.unit} per request")
    titles(
        ax,
        f"Per-request overhead: {title(report).removeprefix('compare: ')}",
        literal(
            _interval_said(measured, report.measures)
            + (" (cut at the axes, ends written)" if clipped else "")
            + f"; {report.settings.pinning}"
        ),
    )
    ax.set_xlim(-0.7, len(measured) - 0.3)
    ax.legend(fontsize=8, frameon=False)


def diff_charts(report: CompareReport) -> list[Path]:
    """Each set's last sweep against the first set's, with the sweep's own diff charts."""
    from harness.load.results import Series
    from harness.render.charts import plot_diff

    swept = [(e, _last_sweep(e)) for e in report.entries]
    usable = [(e, s) for e, s in swept if s is not None and s.ok_levels]
    if len(usable) < 2:
        return []
    _, first = usable[0]
    assert first is not None
    files: list[Path] = []
    for _, other in usable[1:]:
        assert other is not None
        files += plot_diff(Series.from_sweep(first), Series.from_sweep(other), report.out_dir)
    return files


def _last_sweep(entry: Entry) -> SweepResult | None:
    for r in reversed(entry.rounds):
        if r.sweep is not None:
            return r.sweep
    return None


def write_report(report: CompareReport, charts: bool = True, sweeps: bool = True) -> list[Path]:
    """compare.json and compare.md into the report's directory; with `charts`, overhead.png and,
    with `sweeps`, each contender's last sweep's charts and the diff charts of each against the
    first (a few seconds of matplotlib per contender on a slow machine), unless the rounds were
    counted windows."""
    out = report.out_dir
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "compare.json", out / "compare.md"]
    if charts:
        from harness.experiments.compare.render_environments import env_chart
        from harness.experiments.compare.render_latency import hockey_chart, p99_chart
        from harness.experiments.compare.render_memory import memory_chart
        from harness.experiments.compare.render_variants import variant_chart

        for drawn in (
            overhead_chart(report, out / "overhead.png"),
            hockey_chart(report, out / "latency.png"),
            p99_chart(report, out / "p99.png"),
            memory_chart(report, out / "memory.png"),
            env_chart(report, out / "environments.png"),
            variant_chart(report, out / "variants.png"),
        ):
            if drawn is not None:
                files.append(drawn)
    # A counted window (the instructions measures) is one level of N requests sent one at a time:
    # its rate is callgrind's pace, it has no latency, and a chart over concurrency says nothing.
    if charts and sweeps and report.settings.requests is None:
        from harness.render.charts import plot_sweep

        for entry in report.entries:
            last = _last_sweep(entry)
            if last is not None:
                plot_sweep(last)
        files += diff_charts(report)
    report.files = files
    write_atomic(files[1], markdown(report))
    write_json(files[0], {**report.to_dict(), "files": [str(f) for f in files]})
    return files
