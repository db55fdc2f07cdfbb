"""`harness calibrate`: the click layer over harness.experiments.calibrate.run.calibrate()."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from harness.cli.build_settings import (
    LoadOptions,
    ServeOptions,
    WhatOptions,
    option_group,
    plan_cpus,
)
from harness.cli.choose import check_servers, choose_from, what_options
from harness.cli.console import console
from harness.cli.error_lines import one_line_errors
from harness.cli.params import (
    Number,
    TargetName,
    charts_option,
    duration_option,
    levels_option,
    out_dir_option,
    pin_option,
    repeat_option,
    server_option,
    server_options,
    tune_option,
    warmup_option,
    wrk_option,
)
from harness.cli.rules import (
    Quantity,
    measures_option,
    precision_from,
    precision_options,
    short_rounds,
)
from harness.experiments.calibrate.plan import (
    CALIBRATE_LOAD,
    DEFAULT_OUT_DIR,
    DEFAULT_REPEAT,
    CalibrationRequest,
)
from harness.experiments.calibrate.run import CalibrationReport
from harness.experiments.compare.plan import COMPARE_WSGI_WORKER
from harness.measures.known import KNOWN_COSTS
from targets.table import TARGETS

if TYPE_CHECKING:
    from harness.experiments.compare.rounds import Precision

CALIBRATE_TARGETS = tuple(name for name, t in TARGETS.items() if t.baseline is not None)


@click.command("calibrate")
@what_options(
    targets=TargetName(CALIBRATE_TARGETS, why_not={"ceiling": "ceiling takes no middleware"}),
    help="The target to calibrate.",
)
@click.option(
    "--costs",
    default=None,
    help="Known costs, one set per cost: for the timed measures spin:N in µs (5,20,50) or with "
    "units (5us,1.5ms), 1us to 1000ms; for instructions work:N in loop turns (2000,5000,10000). "
    f" [default: {KNOWN_COSTS['spin'].default} µs; {KNOWN_COSTS['work'].default} turns]",
)
@repeat_option(
    DEFAULT_REPEAT,
    "Rounds, interleaved (none, spin:5us, ... then again), each on a restarted server.",
)
@option_group(
    "load",
    LoadOptions,
    levels_option(
        "64",
        "Concurrency levels; each round's cost is taken at its peak-QPS level.",
    ),
    duration_option,
    warmup_option,
    wrk_option,
)
@click.option(
    "--tolerance",
    type=Number(min=0),
    default=None,
    help="Percent of the known cost by which the measured 95% interval is widened on each "
    "side: a cost passes when low - tol*known <= known <= high + tol*known.  [default: "
    f"{100 * KNOWN_COSTS['spin'].tolerance:g} for a spin, {100 * KNOWN_COSTS['work'].tolerance:g}"
    " for work]",
)
@option_group(
    "serve",
    ServeOptions,
    server_option(wsgi_worker=COMPARE_WSGI_WORKER),
    server_options(COMPARE_WSGI_WORKER),
)
@pin_option
@tune_option
@measures_option(
    "qps,cpu",
    only=("cpu", "qps", "instructions", "instructions-perf"),
    what="a comma list of measures that know the same cost (cpu and qps, or an instructions one)",
)
@precision_options
@out_dir_option(DEFAULT_OUT_DIR)
@charts_option("Draw calibration.png (measured against known, identity line, error bars).")
@one_line_errors
def calibrate_command(
    *,
    what: WhatOptions,
    costs: str | None,
    repeat: int,
    load: LoadOptions,
    tolerance: float | None,
    serve: ServeOptions,
    pin: bool,
    tune: bool,
    measures: tuple[str, ...],
    precision: Quantity | None,
    budget: float | None,
    out_dir: str,
    charts: bool,
) -> None:
    """Measure middlewares of known cost and check the harness finds it.

    Runs compare with none,spin:5us,spin:20us,spin:50us (the given costs; no baseline, no
    ceiling) and, per cost and per measure (1e6/QPS per server core, server CPU time per
    request), prints the known cost, the measured overhead over none with its 95% interval,
    and the error. With --measure instructions the sets are work:N, N turns of a loop whose
    instructions are counted in-process under callgrind. Exits 1 when a known cost is outside
    the measured interval widened by the tolerance (10% of a spin, 2% of work, by default) on
    each side. Writes calibration.json and calibration.png, beside compare.json and compare.md.

    Example: harness calibrate -t flask --repeat 3; harness calibrate -t starlette --measure
    instructions; with --app, the known costs go inside your app
    """
    from harness.experiments.calibrate.run import calibrate

    # calibrate chooses its own sets: none and the known costs
    chosen = choose_from(what, python=serve.first_python)
    check_servers(chosen.targets, [serve.server] if serve.server else None, serve.worker_class)
    # The headline of calibrate's compare is CPU time when it is measured.
    rule = precision_from(precision, budget, tuple(sorted(measures, key=lambda m: m != "cpu")))
    if rule is not None:
        load = short_rounds(load)
    cpus = plan_cpus(pin)
    request = CalibrationRequest(
        target=chosen.targets[0],
        costs=costs,
        repeat=repeat,
        serve=serve.settings(cpus),
        load=load.settings(cpus, request=chosen.request, defaults=CALIBRATE_LOAD),
        measures=measures,
        precision=rule,
        tolerance=None if tolerance is None else tolerance / 100,
        tune=tune,
        out_dir=out_dir,
    )
    report = calibrate(request, echo=console.print)
    _show(report, charts=charts)
    _fail_where_a_check_fails(report, rule)


def _show(report: CalibrationReport, *, charts: bool) -> None:
    """Its compare written, then the calibration (not when interrupted: exit 130), its table
    and notes."""
    from harness.experiments.calibrate.render import check_table, notes, write_calibration
    from harness.experiments.compare.render import write_report

    write_report(report.compare, charts=False)
    if report.interrupted:
        console.print(
            "interrupted: the rounds that finished are in "
            f"{report.out_dir / 'compare.md'}; no calibration was written"
        )
        sys.exit(130)
    write_calibration(report, charts=charts)
    console.print(check_table(report.rows, f"calibration: {report.target}"))
    for line in notes(report):
        console.print(escape(line), soft_wrap=True)  # `[low - 10% ...]` is not rich markup
    console.print(f"wrote {', '.join(str(f) for f in report.files)}")


def _fail_where_a_check_fails(report: CalibrationReport, rule: Precision | None) -> None:
    """Exit 1, saying why, when a known cost is not found (or rounds are missing), or when the
    precision asked for was not reached."""
    failure = report.failure()
    if failure is not None:
        raise click.ClickException(failure)
    if report.compare.precision_missed:
        assert rule is not None
        raise click.ClickException(
            f"{rule.describe(report.compare.headline.unit)} not reached within "
            f"{rule.budget_s:g}s: " + "; ".join(report.compare.precision_missed)
        )
