"""`harness diff`: two results side by side, a thin layer over harness.output.diff."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.console import console
from harness.cli.params import out_dir_option
from harness.load.results import ResultError
from harness.load.sweep import DEFAULT_OUT_DIR


@click.command("diff")
@click.argument("a", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("b", type=click.Path(path_type=Path, dir_okay=False))
@out_dir_option(DEFAULT_OUT_DIR, "Where the diff charts go.")
@click.option("--charts/--no-charts", default=True, show_default=True, help="Draw the PNG charts.")
def diff_command(a: Path, b: Path, out_dir: Path, charts: bool) -> None:
    """Diff two results (.dat, including the original script's, or .json): a table of the change
    per concurrency level, and A_B.qps.ttlb.diff.png + A_B.successrate.diff.png."""
    from harness.load.sweep import SweepError
    from harness.output.diff import diff, diff_table

    try:
        result = diff(a=a, b=b, out_dir=out_dir, charts=charts)
    except (ResultError, SweepError) as exc:
        raise click.ClickException(str(exc)) from None
    na, nb = result.a.name, result.b.name
    console.print(diff_table(result))
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
