"""The demo's server axis as a chart (servers.png): each framework and its raw app on each
server, in peak QPS and in server CPU per request. The findings are server_axis's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.experiments.demo.server_axis import OnServer, on_servers

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from harness.experiments.compare.contenders import Entry
    from harness.experiments.demo.run import DemoResult
    from harness.stats.intervals import Estimate


LEGEND = {"raw": "raw app", "framework": "framework, no middleware"}
KINDS = (("raw", "#7f7f7f"), ("framework", "#1f4e9c"))  # left to right in each pair of bars


def _peak(entry: Entry) -> Estimate | None:
    return entry.peak_qps


def _cpu_cost(entry: Entry) -> Estimate | None:
    return entry.cost("cpu")


def servers_chart(result: DemoResult, path: Path) -> Path | None:
    """Per framework and server: peak QPS and server CPU per request, the raw app beside the
    framework, with 95% error bars."""
    groups = [(r.targets[0], on_servers(r)) for r in result.server_reports if r.servers]
    bars = [(target, row) for target, rows in groups for row in rows]
    if not bars:
        return None
    import matplotlib.pyplot as plt

    from harness.render.charts import chart_style, literal, save_laid_out, titles

    with chart_style():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
        _server_panel(axes[0], bars, _peak, "peak requests per second")
        _server_panel(axes[1], bars, _cpu_cost, "server CPU µs per request")
        axes[0].yaxis.set_major_formatter(lambda v, _p: f"{v / 1000:g}k")
        titles(
            axes[0],
            "The server as an axis",
            literal("one worker pinned to one CPU; bars: median, error bars: 95% interval"),
        )
        axes[1].set_title("CPU per request: lower is cheaper", loc="left", fontsize=9)
        axes[1].legend(frameon=False, fontsize=8)
        return save_laid_out(fig, path)


def _server_panel(
    ax: Axes,
    bars: list[tuple[str, OnServer]],
    figure: Callable[[Entry], Estimate | None],
    ylabel: str,
) -> None:
    """One figure of each framework on each server, its raw app's bar beside its own."""
    from harness.render.charts import literal, nonnegative_bar, side_by_side

    for b, (kind, color) in enumerate(KINDS):
        for x, (_, row) in enumerate(bars):
            entry = row.raw if kind == "raw" else row.framework
            est = figure(entry) if entry is not None else None
            if est is None:
                continue
            label = LEGEND[kind] if x == 0 else None
            nonnegative_bar(ax, x + side_by_side(b, len(KINDS), 0.38), est, 0.38, color, label)
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([literal(f"{t}\n{row.server}") for t, row in bars], fontsize=8)
    ax.set_ylabel(ylabel)
