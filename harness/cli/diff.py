"""`harness diff`: two results side by side: two sweeps (a thin layer over
harness.experiments.sweep.diff), or two compares (harness.experiments.compare.diff), which can gate
a CI job on a stored baseline."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.console import console
from harness.cli.error_lines import one_line_errors
from harness.cli.params import charts_option, out_dir_option
from harness.cli.rules import Quantity, QuantityType
from harness.errors import UsageError
from harness.experiments.sweep.plan import DEFAULT_OUT_DIR, check_out_dir
from harness.load.files import read_json, schema_of
from harness.load.results import ResultError


def is_compare_report(path: Path) -> bool:
    """A compare.json (any version), by the schema it says it has; a .dat is a sweep's."""
    if path.suffix == ".dat":
        return False
    try:
        data = read_json(path, error=ResultError)
    except ResultError:
        return path.name == "compare.json"  # CompareReport.load says what is wrong with it
    return schema_of(data) == "mwbench.compare" or path.name == "compare.json"


@click.command("diff")
@click.argument("a", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("b", type=click.Path(path_type=Path, dir_okay=False))
@out_dir_option(DEFAULT_OUT_DIR, "Where the diff charts (or compare-diff.json/.md) go.")
@charts_option("Draw the PNG charts.")
@click.option(
    "--max-regression",
    type=QuantityType(),
    default=None,
    help="Two compare.json: exit 1 when a set's change from A to B, in B's headline measure, "
    "is above this and the rounds tell it from zero (5us; a bare number in the measure's unit; "
    "2% of A's value).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "markdown"]),
    default="table",
    show_default=True,
    help="Two compare.json: markdown prints a summary fit for a pull request's comment or a CI "
    "job's summary (the verdict, the headline's table, the rest folded) instead of the tables.",
)
@one_line_errors
def diff_command(
    a: Path,
    b: Path,
    out_dir: Path,
    charts: bool,
    max_regression: Quantity | None,
    output_format: str,
) -> None:
    """Diff two results: two sweeps (.dat, including the original script's, or .json): a table
    of the change per concurrency level, and A_B.qps.ttlb.diff.png + A_B.successrate.diff.png;
    or two compare.json: per set and measure, the change from A to B with its 95% interval."""
    for path in (a, b):
        if not path.is_file():  # the sweep reader's own words, for either kind
            raise ResultError(f"{path}: no such file")
    compares = [is_compare_report(path) for path in (a, b)]
    if any(compares):
        if not all(compares):
            raise UsageError("give two compare.json or two sweeps (.dat or .json), not one of each")
        _diff_compares(a, b, out_dir, max_regression, markdown=output_format == "markdown")
        return
    if output_format == "markdown":
        raise UsageError("--format markdown is for the diff of two compare.json")
    if max_regression is not None:
        raise UsageError("--max-regression gates the diff of two compare.json, not of two sweeps")
    _diff_sweeps(a, b, out_dir, charts)


def _diff_compares(
    a: Path, b: Path, out_dir: Path, limit: Quantity | None, markdown: bool = False
) -> None:
    from harness.experiments.compare.diff import Regression, diff_compares
    from harness.experiments.compare.render_diff import (
        notes,
        rich_tables,
        summary,
        write_compare_diff,
    )
    from harness.experiments.compare.result import CompareReport

    before, after = CompareReport.load(a), CompareReport.load(b)
    check_out_dir(out_dir)  # before the tables: a diff is written whole or not at all
    gate = None
    if limit is not None:
        headline = after.headline
        value = limit.in_unit_of(headline.unit, "--max-regression")
        gate = Regression(value, headline.name, relative=limit.unit == "%")
    diff = diff_compares(before, after, gate)
    files = write_compare_diff(diff, out_dir)
    if markdown:  # stdout is the comment: nothing else on it
        click.echo(summary(diff), nl=False)
    else:
        for table in rich_tables(diff):
            console.print(table)
        for line in notes(diff):
            console.print(line, soft_wrap=True, markup=False)
        console.print(f"wrote {', '.join(str(f) for f in files)}", soft_wrap=True)
    if diff.regressions:
        raise click.ClickException(
            "regression over --max-regression: " + "; ".join(diff.regression_lines())
        )
    if gate is not None and diff.unjudged:
        raise click.ClickException(
            f"--max-regression cannot judge {', '.join(diff.unjudged)}: no {gate.measure} "
            "figure in one of the runs (every round failed, or the set is not in B)"
        )


def _diff_sweeps(a: Path, b: Path, out_dir: Path, charts: bool) -> None:
    from harness.experiments.sweep.diff import diff, diff_table

    result = diff(a=a, b=b, out_dir=out_dir, charts=charts)
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
