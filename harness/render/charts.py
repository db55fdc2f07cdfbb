"""Charts of a sweep and of a diff (matplotlib, Agg: no display needed).

Concurrency is a log axis with a tick at every level (not categories), titles say the duration
and threads the runs really used, and names are printed literally (`&`, `$`, `_` included).
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from harness.load.datfile import DatRow
from harness.load.files import write_atomic
from harness.load.results import Series

if TYPE_CHECKING:
    from harness.load.results import SweepResult
    from harness.stats.intervals import Estimate

COLORS = ("#1f4e9c", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")  # bars side by side
QPS_COLORS = ("#d62728", "#e377c2")  # the original's red, and pink for the second run
LATENCY_COLORS = ("#1f4e9c", "#6fa8dc")  # the original's blue, and a lighter one
# The lines as the original's gnuplot drew them: QPS bold with dots, latency dashed with squares.
QPS_LINE: dict[str, Any] = {"marker": "o", "linewidth": 2.2, "markersize": 6}
LATENCY_LINE: dict[str, Any] = {"marker": "s", "linewidth": 1.6, "markersize": 5, "linestyle": "--"}
FAILED_COLOR = "#7f7f7f"
_DPI = 110


def chart_style() -> AbstractContextManager[None]:
    return plt.rc_context(
        {
            "axes.spines.top": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "grid.linestyle": "-",
            "axes.titlesize": 12,
            "axes.titleweight": "bold",
            "axes.labelsize": 11,
            "legend.fontsize": 9,
            "legend.framealpha": 0.9,
            "font.size": 10,
        }
    )


def literal(text: str) -> str:
    """Text matplotlib prints as given: `$` would start mathtext."""
    return text.replace("$", r"\$")


def _si(value: float, _pos: object = None) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _ms(value: float, _pos: object = None) -> str:
    return f"{value * 1000:g} µs" if 0 < value < 1 else f"{value:g} ms"


def _concurrency_axis(ax: Axes, levels: Iterable[int]) -> None:
    ticks = sorted(set(levels))
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(_si))  # 1k, 50k: short enough not to rotate
    ax.xaxis.set_minor_locator(NullLocator())
    if ticks:
        ax.set_xlim(ticks[0] / 1.35, ticks[-1] * 1.35)
    ax.set_xlabel("concurrency (connections, log scale)")


def _runs_line(series: Sequence[Series]) -> str:
    parts = []
    for one in series:
        prefix = f"{one.name}: " if len(series) > 1 else ""
        if not one.duration_s and not one.threads:
            # A .dat keeps neither; saying so beats the original's hard-coded `300s`.
            parts.append(f"{prefix}{one.path.name} (duration and threads not recorded)")
            continue
        duration = f"{one.duration_s:g}s per level" if one.duration_s else "duration not recorded"
        threads = (
            "threads " + "/".join(map(str, one.threads)) if one.threads else "threads not recorded"
        )
        parts.append(f"{prefix}{duration}, {threads}")
    return literal(" · ".join(parts))


def _mark_failed(ax: Axes, series: Series, color: str, label: bool) -> None:
    if not series.failed:
        return
    xs = sorted(series.failed)
    ax.plot(
        xs,
        [0.0] * len(xs),
        linestyle="none",
        marker="X",
        markersize=10,
        color=color,
        clip_on=False,
        zorder=5,
        label=f"{literal(series.name)}: failed / skipped" if label else None,
    )


def titles(ax: Axes, title: str, subtitle: str) -> None:
    # Wrapped to the figure's width: one long line would make tight_layout squeeze the axes
    # to a sliver to fit it (a 9 pt character is about 1/13 inch wide).
    figure = ax.get_figure(root=True)
    inches = figure.get_figwidth() if figure is not None else 8.0
    lines = textwrap.wrap(subtitle, width=max(40, int(inches * 13))) or [""]
    ax.set_title(literal(title), loc="left", pad=12 + 12 * len(lines))
    ax.text(
        0,
        1.015,
        "\n".join(lines),
        transform=ax.transAxes,
        fontsize=9,
        color="#444444",
        va="bottom",
    )


def _legend_below(fig: Figure, handles: list[Any], ncols: int) -> None:
    # Below everything, like the original's `set key below`: it never hides a point or a label.
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncols=ncols,
        frameon=False,
    )


def estimate_bars(
    ax: Axes, xs: Sequence[float], estimates: Sequence[Estimate], width: float, **bar: Any
) -> None:
    """Bars at the estimates' medians, with 95% error bars over those that have an interval
    only: a single round's bar gets none, where a cap of zero width would read as exact."""
    ax.bar(xs, [e.median for e in estimates], width, **bar)
    shown = [(x, e) for x, e in zip(xs, estimates, strict=True) if e.low is not None]
    if shown:
        ax.errorbar(
            [x for x, _ in shown],
            [e.median for _, e in shown],
            yerr=[[e.median - e.low for _, e in shown], [e.high - e.median for _, e in shown]],  # type: ignore[operator]
            fmt="none",
            capsize=4,
            elinewidth=1,
            ecolor="#333333",
        )


def side_by_side(index: int, count: int, width: float) -> float:
    """Where the index-th of `count` bars of `width` sharing one slot sits, from its centre."""
    return (index - (count - 1) / 2) * width


def nonnegative_bar(
    ax: Axes, x: float, estimate: Estimate, width: float, color: str, label: str | None
) -> float:
    """A bar at the estimate's median with its 95% error bar, the interval stopped at zero: a
    rate or a cost is never negative, though an interval from two rounds can reach below zero.
    The top of its error bar, for the axes' limit and a label over it."""
    low = max(0.0, estimate.low) if estimate.low is not None else estimate.median
    high = estimate.high if estimate.high is not None else estimate.median
    ax.bar(
        x,
        estimate.median,
        width,
        color=color,
        yerr=[[estimate.median - low], [high - estimate.median]],
        capsize=3,
        label=label,
    )
    return high


def category_labels(ax: Axes, labels: Sequence[str]) -> None:
    """One tick per group of bars, its label printed literally, slanted when more than five
    would crowd each other."""
    crowded = len(labels) > 5
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(
        [literal(label) for label in labels],
        rotation=30 if crowded else 0,
        ha="right" if crowded else "center",
        fontsize=8,
    )


def save_figure(fig: Figure, path: Path) -> Path:
    """The figure as a PNG at `path`, whole or not at all: a full disk leaves no half a PNG
    behind, and the chart of a previous run stays until the new one is written."""
    image = io.BytesIO()
    try:
        fig.savefig(image, format="png", dpi=_DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return write_atomic(path, image.getvalue())


def save_laid_out(fig: Figure, path: Path) -> Path:
    """The figure laid out to fit its labels and legend (tight_layout), saved as save_figure
    does."""
    fig.tight_layout()
    return save_figure(fig, path)


def points(rows: Iterable[DatRow], attr: str) -> tuple[list[int], list[float]]:
    """The (concurrency, value) pairs a chart draws for `attr`, by concurrency."""
    kept = sorted(
        (row for row in rows if getattr(row, attr) is not None), key=lambda row: row.concurrency
    )
    return [row.concurrency for row in kept], [float(getattr(row, attr)) for row in kept]


def _mark_no_2xx(ax: Axes, lat_ax: Axes, series: Series, color: str, name: str) -> list[Any]:
    """A level whose answers were all errors: its QPS and latency as hollow points, off the
    lines (they measure the error path, not the URL), labelled, so it is a point, not a hole."""
    xs, qps = points(series.no_2xx_rows, "qps")
    if not xs:
        return []
    (marks,) = ax.plot(
        xs,
        qps,
        linestyle="none",
        marker="o",
        markersize=9,
        markerfacecolor="none",
        markeredgewidth=1.8,
        color=color,
        zorder=5,
        label=f"{name}QPS, no 2xx/3xx answer",
    )
    for x, y in zip(xs, qps, strict=True):
        ax.annotate(
            "not 2xx",
            (x, y),
            textcoords="offset points",
            xytext=(0, -15),
            ha="center",
            fontsize=8,
            color=color,
        )
    lx, lat = points(series.no_2xx_rows, "avg_latency_ms")
    lat_ax.plot(
        lx,
        lat,
        linestyle="none",
        marker="s",
        markersize=7,
        markerfacecolor="none",
        color=color,
        zorder=5,
        label=f"{name}avg latency, no 2xx/3xx answer",
    )
    return [marks]


def _all_levels(series: Sequence[Series]) -> list[int]:
    return [r.concurrency for one in series for r in one.rows] + [
        c for one in series for c in one.failed
    ]


def qps_latency_chart(series: Sequence[Series], title: str, path: Path) -> Path:
    """QPS (left axis, solid) and average latency (right axis, dashed) against concurrency."""
    with chart_style():
        fig, ax, ratio_ax = _qps_latency_figure(paired=len(series) == 2)
        lat_ax = ax.twinx()
        lat_ax.grid(False)
        handles = []
        for i, one in enumerate(series):
            handles += _draw_run(ax, lat_ax, one, i, alone=len(series) == 1)
        _qps_latency_axes(ax, lat_ax, series)
        failed = [h for h in ax.get_lines() if str(h.get_label()).endswith("failed / skipped")]
        titles(ax, title, _runs_line(series))
        if ratio_ax is not None:
            ax.set_xlabel("")
            _ratio_panel(ratio_ax, series[0], series[1])
        _legend_below(fig, handles + failed, ncols=len(handles + failed))
        return save_figure(fig, path)


def _qps_latency_figure(paired: bool) -> tuple[Figure, Axes, Axes | None]:
    """The figure, its QPS axes and, for two runs, the panel below it for their ratio."""
    if paired:
        fig, (ax, ratio_ax) = plt.subplots(
            2, 1, figsize=(10, 7.4), sharex=True, height_ratios=(3, 1)
        )
        return fig, ax, ratio_ax
    fig, ax = plt.subplots(figsize=(10, 5.8))
    return fig, ax, None


def _draw_run(ax: Axes, lat_ax: Axes, one: Series, i: int, alone: bool) -> list[Any]:
    """The i-th run's QPS line (its values written over it when it is the only run), its latency
    line, its levels with no 2xx/3xx answer and its failed ones; the legend's handles."""
    name = "" if alone else literal(one.name) + " "
    xs, qps = points(one.measured_rows, "qps")
    (qps_line,) = ax.plot(xs, qps, color=QPS_COLORS[i % 2], label=f"{name}QPS", **QPS_LINE)
    if alone:
        _qps_values(ax, xs, qps)
    lx, lat = points(one.measured_rows, "avg_latency_ms")
    color, label = LATENCY_COLORS[i % 2], f"{name}avg latency"
    (lat_line,) = lat_ax.plot(lx, lat, color=color, label=label, **LATENCY_LINE)
    no_2xx = _mark_no_2xx(ax, lat_ax, one, QPS_COLORS[i % 2], name)
    _mark_failed(ax, one, FAILED_COLOR if alone else QPS_COLORS[i % 2], True)
    return [qps_line, lat_line, *no_2xx]


def _qps_values(ax: Axes, xs: Sequence[int], qps: Sequence[float]) -> None:
    """Each level's QPS written over its point: `12.3k` from 10,000 up, `9,876` below."""
    for x, y in zip(xs, qps, strict=True):
        label = f"{y / 1e3:.1f}k" if y >= 10_000 else f"{y:,.0f}"
        ax.annotate(
            label,
            (x, y),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
            color=QPS_COLORS[0],
        )


def _qps_latency_axes(ax: Axes, lat_ax: Axes, series: Sequence[Series]) -> None:
    """Concurrency across, QPS up the left from 0, latency up the right from 0."""
    _concurrency_axis(ax, _all_levels(series))
    ax.set_ylim(bottom=0)
    ax.set_ylim(top=max(ax.get_ylim()[1], 1) * 1.1)  # room for the value labels
    lat_ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(_si))
    lat_ax.yaxis.set_major_formatter(FuncFormatter(_ms))
    ax.set_ylabel("QPS (requests/s)", color=QPS_COLORS[0])
    lat_ax.set_ylabel("average latency (TTLB)", color=LATENCY_COLORS[0])
    lat_ax.spines["top"].set_visible(False)


def _ratio_panel(ax: Axes, a: Series, b: Series) -> None:
    """A's QPS as a percentage of B's at each level both have: the source document's
    `13.68% of raw` read off directly."""
    qps_b = {row.concurrency: row.qps for row in b.measured_rows if row.qps}
    pts = [
        (row.concurrency, 100.0 * row.qps / qps_b[row.concurrency])
        for row in a.measured_rows
        if row.qps is not None and row.concurrency in qps_b
    ]
    pts.sort()
    if pts:
        xs, pct = zip(*pts, strict=True)
        ax.plot(xs, pct, marker="D", linewidth=1.8, markersize=5, color="#444444")
        for i, (x, y) in enumerate(pts):
            # Alternate two heights, so labels of close levels (15k, 20k, 25k) do not collide.
            lift = 7 if i % 2 == 0 else 17
            ax.annotate(
                f"{y:.1f}%",
                (x, y),
                textcoords="offset points",
                xytext=(0, lift),
                ha="center",
                fontsize=8,
            )
        ax.axhline(100, color="#999999", linewidth=1, linestyle=":")
        ax.set_ylim(0, max(110.0, max(pct) * 1.2))
    _concurrency_axis(ax, _all_levels([a, b]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}%"))
    ax.set_ylabel(literal(f"{a.name} / {b.name}\nQPS"), fontsize=9)


def success_chart(series: Sequence[Series], title: str, path: Path) -> Path:
    with chart_style():
        fig, ax = plt.subplots(figsize=(10, 4.8))
        for i, one in enumerate(series):
            xs, pct = points(one.rows, "success_pct")  # a level with no 2xx/3xx is its 0%
            name = literal(one.name) if len(series) > 1 else "success rate"
            ax.plot(xs, pct, marker="o", linewidth=2.2, color=QPS_COLORS[i % 2], label=name)
            if len(series) == 1:
                ax.fill_between(xs, pct, alpha=0.12, color=QPS_COLORS[0])
                for x, y in zip(xs, pct, strict=True):
                    if y < 99.995:
                        ax.annotate(
                            f"{y:.2f}%",
                            (x, y),
                            textcoords="offset points",
                            xytext=(0, 8 if y < 1 else -14),
                            ha="center",
                            fontsize=8,
                        )
            _mark_failed(ax, one, FAILED_COLOR if len(series) == 1 else QPS_COLORS[i % 2], True)
        _concurrency_axis(ax, _all_levels(series))
        ax.set_ylim(0, 105)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}%"))
        ax.set_ylabel("success rate (2xx/3xx of attempted)")
        handles, _labels = ax.get_legend_handles_labels()
        _legend_below(fig, handles, ncols=max(1, len(handles)))
        titles(ax, title, _runs_line(series))
        return save_figure(fig, path)


def latency_chart(result: SweepResult, path: Path) -> Path:
    """Percentiles p50..p99 and the average, on a log axis since tails differ by decades."""
    levels = sorted(result.ok_levels, key=lambda lv: lv.concurrency)
    with chart_style():
        fig, ax = plt.subplots(figsize=(10, 5.4))
        shades = ("#9ecae1", "#6baed6", "#3182bd", "#08519c")
        for attr, label, color in zip(
            ("p50_ms", "p75_ms", "p90_ms", "p99_ms"),
            ("p50", "p75", "p90", "p99"),
            shades,
            strict=True,
        ):
            pts = [(lv.concurrency, getattr(lv, attr)) for lv in levels]
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", linewidth=2, color=color, label=label)
        pts = [(lv.concurrency, lv.latency_avg_ms) for lv in levels if lv.latency_avg_ms]
        if pts:
            ax.plot(
                *zip(*pts, strict=True),
                marker="s",
                linestyle="--",
                color=LATENCY_COLORS[0],
                linewidth=1.4,
                label="average",
            )
        pts = [(lv.concurrency, lv.latency_max_ms) for lv in levels if lv.latency_max_ms]
        if pts:
            ax.plot(
                *zip(*pts, strict=True),
                marker="v",
                linestyle=":",
                color="#555555",
                linewidth=1.2,
                label="max",
            )
        _concurrency_axis(ax, [lv.concurrency for lv in result.levels])
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_ms))
        ax.set_ylabel("latency (log scale)")
        handles, _labels = ax.get_legend_handles_labels()
        _legend_below(fig, handles, ncols=max(1, len(handles)))
        titles(
            ax,
            f"Latency percentiles — {result.name} — {result.url}",
            _runs_line([Series.from_sweep(result)]),
        )
        return save_figure(fig, path)


def plot_sweep(result: SweepResult) -> list[Path]:
    """NAME_qps_ttlb.png, NAME_successrate.png and NAME_latency.png next to NAME.dat, listed in
    NAME.json; nothing for a sweep with no row in NAME.dat, and no latency chart when no level
    had a 2xx/3xx answer (the percentiles of error pages are not the URL's). An OSError (a
    full disk) leaves no half-written chart."""
    if not result.answered_levels:
        return []
    series = Series.from_sweep(result)
    out, name = result.out_dir, result.name
    head = f"{name} — {result.url}"
    charts = [
        qps_latency_chart([series], f"QPS & TTLB — {head}", out / f"{name}_qps_ttlb.png"),
        success_chart([series], f"Success rate — {head}", out / f"{name}_successrate.png"),
    ]
    if result.ok_levels:
        charts.append(latency_chart(result, out / f"{name}_latency.png"))
    result.charts = charts
    result.save()
    return result.charts


def plot_diff(a: Series, b: Series, out_dir: Path) -> list[Path]:
    """A_B.qps.ttlb.diff.png and A_B.successrate.diff.png (the original's names)."""
    stem = f"{a.name}_{b.name}"
    vs = f"{a.name} vs {b.name}"
    return [
        qps_latency_chart([a, b], f"QPS & TTLB — {vs}", out_dir / f"{stem}.qps.ttlb.diff.png"),
        success_chart([a, b], f"Success rate — {vs}", out_dir / f"{stem}.successrate.diff.png"),
    ]


def save_line_chart(fig: Figure, ax: Axes, path: Path, *, title: str, note: str) -> Path | None:
    """A chart of lines finished alike: its title and note, the legend in two columns, laid
    out and saved."""
    titles(ax, title, literal(note))
    ax.legend(fontsize=7, frameon=False, ncol=2)
    return save_laid_out(fig, path)
