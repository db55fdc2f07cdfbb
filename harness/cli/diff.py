"""`harness diff`: two results side by side, a thin layer over harness.output.diff."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from harness.cli.console import console
from harness.cli.params import out_dir_option
from harness.load.datfile import DatRow
from harness.load.progress import format_ms
from harness.load.results import ResultError
from harness.load.sweep import DEFAULT_OUT_DIR


def _row_cell(row: DatRow | None, attr: str) -> str:
    value = getattr(row, attr) if row is not None else None
    if value is None:
        return "—"
    if attr == "qps":
        return f"{value:,.0f}"
    if attr == "success_pct":
        return f"{value:.2f}%"
    return format_ms(value)


def _change(value: float | None, unit: str = "%", good_when_up: bool = True) -> str:
    if value is None:
        return "—"
    style = "green" if (value >= 0) == good_when_up else "red"
    return f"[{style}]{value:+.1f}{unit}[/]"


@click.command("diff")
@click.argument("a", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("b", type=click.Path(path_type=Path, dir_okay=False))
@out_dir_option(DEFAULT_OUT_DIR, "Where the diff charts go.")
@click.option("--charts/--no-charts", default=True, show_default=True, help="Draw the PNG charts.")
def diff_command(a: Path, b: Path, out_dir: Path, charts: bool) -> None:
    """Diff two results (.dat, including the original script's, or .json): a table of the change
    per concurrency level, and A_B.qps.ttlb.diff.png + A_B.successrate.diff.png."""
    from harness.load.sweep import SweepError
    from harness.output.diff import diff

    try:
        result = diff(a=a, b=b, out_dir=out_dir, charts=charts)
    except (ResultError, SweepError) as exc:
        raise click.ClickException(str(exc)) from None
    na, nb = result.a.name, result.b.name
    table = Table(title=f"{na} (A) vs {nb} (B); change is B relative to A", title_justify="left")
    table.add_column("c", justify="right")
    for column in (f"{na} QPS", f"{nb} QPS", "QPS Δ", f"{na} avg", f"{nb} avg", "latency Δ"):
        table.add_column(column, justify="right")
    for column in (f"{na} success", f"{nb} success", "success Δ"):
        table.add_column(column, justify="right")
    for row in result.rows:
        table.add_row(
            str(row.concurrency),
            _row_cell(row.a, "qps"),
            _row_cell(row.b, "qps"),
            _change(row.qps_change_pct),
            _row_cell(row.a, "avg_latency_ms"),
            _row_cell(row.b, "avg_latency_ms"),
            _change(row.latency_change_pct, good_when_up=False),
            _row_cell(row.a, "success_pct"),
            _row_cell(row.b, "success_pct"),
            _change(row.success_change_pp, unit=" pp"),
        )
        console.print(table)
    peak_a, peak_b, ratio = result.peak_a, result.peak_b, result.peak_ratio_pct
    if peak_a and peak_b and ratio is not None:
        console.print(
            f"peak QPS: {na} {peak_a.qps:,.0f} at c={peak_a.concurrency}, "
            f"{nb} {peak_b.qps:,.0f} at c={peak_b.concurrency}: "
            f"{na} reaches [bold]{ratio:.2f}%[/] of {nb}",
            soft_wrap=True,
        )
    for chart in result.charts:
        console.print(f"chart: {chart}", soft_wrap=True)
