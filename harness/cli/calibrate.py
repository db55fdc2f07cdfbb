"""`harness calibrate`: the click layer over harness.measure.calibrate.calibrate()."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from harness.cli.choose import app_options, check_servers, choose_from, request_options
from harness.cli.console import console
from harness.cli.params import (
    Levels,
    TargetName,
    apply_precision,
    duration_option,
    out_dir_option,
    pin_option,
    precision_options,
    server_option,
    server_options,
    tune_option,
    warmup_option,
    wrk_option,
)
from harness.load.sweep import SweepError
from harness.load.wrk import WrkError
from harness.measure.calibrate import DEFAULT_COSTS, DEFAULT_OUT_DIR, DEFAULT_REPEAT, parse_costs
from harness.measure.check import TOLERANCE
from harness.serving.servers import ServerError
from targets.table import TARGETS

CALIBRATE_TARGETS = tuple(name for name, t in TARGETS.items() if t.baseline is not None)


def _costs(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        return parse_costs(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("calibrate")
@click.option(
    "-t",
    "--target",
    type=TargetName(CALIBRATE_TARGETS, why_not={"ceiling": "ceiling takes no middleware"}),
    help="The target to calibrate.",
)
@app_options
@request_options
@click.option(
    "--costs",
    "costs_ns",
    default=DEFAULT_COSTS,
    show_default=True,
    callback=_costs,
    help="Known costs: one spin:N set per cost, in µs (5,20,50) or with units (5us,1.5ms); "
    "1us to 1000ms.",
)
@click.option(
    "--repeat",
    "-r",
    type=click.IntRange(min=2),
    default=DEFAULT_REPEAT,
    show_default=True,
    help="Rounds, interleaved (none, spin:5us, ... then again), each on a restarted server.",
)
@click.option(
    "-c",
    "--levels",
    type=Levels(),
    default="64",
    show_default=True,
    help="Concurrency levels; each round's cost is taken at its peak-QPS level.",
)
@duration_option
@warmup_option
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=100 * TOLERANCE,
    show_default=True,
    help="Percent of the known cost by which the measured 95% interval is widened on each "
    "side: a cost passes when low - tol*known <= known <= high + tol*known.",
)
@server_option()
@server_options
@pin_option
@tune_option
@precision_options
@out_dir_option(DEFAULT_OUT_DIR)
@wrk_option
@click.option(
    "--charts/--no-charts",
    default=True,
    show_default=True,
    help="Draw calibration.png (measured against known, identity line, error bars).",
)
def calibrate_command(
    tolerance: float, charts: bool, precision: float | None, budget: float, **options: Any
) -> None:
    """Measure spin middlewares of known CPU cost and check the harness finds it.

    Runs compare with none,spin:5us,spin:20us,spin:50us (the given costs; no baseline, no
    ceiling) and, per cost and per measure (1e6/QPS per server core, server CPU time per
    request), prints the known cost, the measured overhead over none with its 95% interval,
    and the error. Exits 1 when a known cost is outside the measured interval widened by the
    tolerance (10% of the known cost by default) on each side. Writes calibration.json and
    calibration.png, beside compare.json and compare.md.

    Example: harness calibrate -t flask --repeat 3; with --app, the spins go inside your app
    """
    from harness.measure.calibrate import calibrate

    options["sets"] = "none"  # calibrate chooses its own sets: none and the spins
    chosen = choose_from(options)
    server = options["server"]
    check_servers(chosen.targets, [server] if server else None, options["worker_class"])
    options.update(target=chosen.targets[0], request=chosen.request)
    apply_precision(precision, budget, options)
    from harness.output.calibration import check_table, notes, write_calibration
    from harness.output.compare_report import write_report

    try:
        report = calibrate(tolerance=tolerance / 100, echo=console.print, **options)
    except (SweepError, WrkError, ServerError, ValueError) as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    write_report(report.compare, charts=False)
    if report.interrupted:
        console.print(
            "interrupted: the rounds that finished are in "
            f"{Path(options['out_dir']) / 'compare.md'}; no calibration was written"
        )
        sys.exit(130)
    write_calibration(report, charts=charts)
    console.print(check_table(report.rows, f"calibration: {report.target}"))
    for line in notes(report):
        console.print(escape(line), soft_wrap=True)  # `[low - 10% ...]` is not rich markup
    console.print(f"wrote {', '.join(str(f) for f in report.files)}")
    failure = report.failure()
    if failure is not None:
        raise click.ClickException(failure)
    if report.compare.precision_missed:
        raise click.ClickException(
            f"±{precision:g} µs not reached within {budget:g}s: "
            + "; ".join(report.compare.precision_missed)
        )
