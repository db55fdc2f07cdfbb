"""`harness compare`: the click layer over harness.measure.compare.compare()."""

from __future__ import annotations

import sys
from typing import Any

import click

from harness.cli.choose import app_options, check_servers, choose_from, request_options
from harness.cli.console import console
from harness.cli.params import (
    Duration,
    Levels,
    LogOutput,
    TargetList,
    apply_precision,
    duration_option,
    out_dir_option,
    pin_option,
    precision_options,
    server_option,
    server_options,
    sets_option,
    tune_option,
    warmup_option,
    wrk_option,
)
from harness.load.sweep import PRESETS, SweepError
from harness.load.wrk import WrkError
from harness.measure.compare import DEFAULT_OUT_DIR
from harness.serving.servers import ServerError


@click.command()
@click.option(
    "-t",
    "--target",
    "targets",
    type=TargetList(),
    help="A target, or a comma list of targets to compare frameworks.",
)
@app_options
@sets_option()
@request_options
@click.option(
    "--baseline/--no-baseline",
    default=True,
    show_default=True,
    help="Also measure each target's raw baseline.",
)
@click.option(
    "-c",
    "--levels",
    type=Levels(),
    default=None,
    help="Concurrency levels, e.g. 16,64  [default: 64]",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help="Levels, duration and timeout of a sweep preset.",
)
@duration_option
@warmup_option
@click.option(
    "--timeout",
    default="5s",
    show_default=True,
    type=Duration(),
    help="wrk's per-request timeout.",
)
@click.option(
    "--repeat",
    "-r",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Rounds, interleaved (A B A B ...), each on a restarted server.",
)
@precision_options
@click.option(
    "--log-output",
    type=LogOutput(),
    default=None,
    help="Where middleware logs go: stdout, null, or file:PATH  [default: a file per round, "
    "DIR/logs/SET.log]",
)
@server_option(many=True)
@server_options
@pin_option
@tune_option
@out_dir_option(DEFAULT_OUT_DIR)
@wrk_option
@click.option(
    "--ceiling/--no-ceiling",
    default=True,
    show_default=True,
    help="Measure the load generator's limit first, to flag wrk-bound results.",
)
@click.option(
    "--ceiling-qps",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="The ceiling's QPS, given instead of measured.",
)
@click.option(
    "--max-overhead-us",
    type=float,
    default=None,
    help="Exit 1 when a set's median overhead (CPU µs/request) is above this.",
)
@click.option(
    "--charts/--no-charts",
    default=True,
    show_default=True,
    help="Draw overhead.png, the sweeps' charts and the diff charts.",
)
def compare(
    preset: str | None,
    levels: tuple[int, ...] | None,
    charts: bool,
    precision: float | None,
    budget: float,
    **options: Any,
) -> None:
    """Per-request overhead of middleware sets (and frameworks) against the raw baseline; of
    your own app's middlewares with --app.

    Examples: harness compare -t flask -m none,all;
    harness compare --app main.py:app --path /items/1 -m each;
    harness compare -t starlette --server gunicorn-uvicorn,uvicorn,granian -m none
    """
    chosen = choose_from(options)
    check_servers(chosen.targets, options["servers"], options["worker_class"])
    options.update(targets=chosen.targets, sets=chosen.sets, request=chosen.request)
    apply_precision(precision, budget, options)
    from harness.measure.compare import compare as run_compare
    from harness.output.compare_report import notes, rich_table, server_table, write_report

    if preset is not None:
        picked = PRESETS[preset]
        options.update(duration=picked.duration, timeout=picked.timeout, warmup=picked.warmup)
        levels = levels or picked.levels
    try:
        report = run_compare(levels=levels or (64,), echo=console.print, **options)
    except (SweepError, WrkError, ServerError, ValueError) as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    write_report(report, charts=charts)
    if report.interrupted:
        console.print(
            "interrupted: the rounds that finished are in the report "
            f"({report.out_dir / 'compare.md'})"
        )
        sys.exit(130)
    console.print(rich_table(report))
    if report.server_rows:
        console.print(server_table(report))
    for line in notes(report):
        console.print(line)
    console.print(
        f"wrote {', '.join(str(f) for f in report.files[:3])}"
        + (f" and {len(report.files) - 3} charts" if len(report.files) > 3 else "")
    )
    if report.gate_failures:
        raise click.ClickException(
            "overhead above --max-overhead-us: " + "; ".join(report.gate_failures)
        )
    if report.precision_missed:
        raise click.ClickException(
            f"±{precision:g} µs not reached within {budget:g}s: "
            + "; ".join(report.precision_missed)
        )
    if report.missing:
        raise click.ClickException(f"{len(report.missing)} round(s) missing; see compare.md")
