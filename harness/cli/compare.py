"""`harness compare`: the click layer over harness.experiments.compare.run.compare()."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from harness.cli.axis_options import Shard, variant_option
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
    ByteSize,
    Duration,
    LogOutput,
    Number,
    TargetList,
    charts_option,
    duration_option,
    levels_option,
    out_dir_option,
    pass_env_option,
    pin_option,
    python_option,
    server_option,
    server_options,
    sets_option,
    tune_option,
    warmup_option,
    wrk_option,
)
from harness.cli.rules import (
    QuantityType,
    RuleOptions,
    measures_option,
    precision_options,
    rate_option,
    resolve_rules,
    slo_options,
)
from harness.experiments.compare.plan import (
    COMPARE_LOAD,
    COMPARE_WSGI_WORKER,
    DEFAULT_OUT_DIR,
    CompareRequest,
)
from harness.experiments.sweep.plan import PRESETS
from harness.serving.variants import parse_variants

if TYPE_CHECKING:
    from harness.experiments.compare.result import CompareReport
    from harness.experiments.compare.rounds import Precision


@click.command()
@what_options(
    targets=TargetList(),
    help="A target, or a comma list of targets to compare frameworks.",
    many=True,
    sets=sets_option(),
)
@click.option(
    "--baseline/--no-baseline",
    default=True,
    show_default=True,
    help="Also measure each target's raw baseline.",
)
@option_group(
    "load",
    LoadOptions,
    levels_option(None, "Concurrency levels, e.g. 16,64  [default: 64]"),
    click.option(
        "--preset",
        type=click.Choice(sorted(PRESETS)),
        default=None,
        help="Levels, duration and timeout of a sweep preset.",
    ),
    duration_option,
    warmup_option,
    click.option(
        "--requests",
        type=click.IntRange(min=1),
        default=None,
        help="With --measure instructions: the requests each round counts, on one connection "
        "after a warm-up of as many  [default: 600]",
    ),
    click.option(
        "--timeout",
        default="5s",
        show_default=True,
        type=Duration(),
        help="wrk's per-request timeout.",
    ),
    wrk_option,
)
@click.option(
    "--repeat",
    "-r",
    type=click.IntRange(min=1),
    default=1,
    help="Rounds, interleaved (A B A B ...), each on a restarted server; 1: no interval.  "
    "[default: at least 3 of 1 s, then more within --budget (1m) until every overhead is "
    "clear of zero]",
)
@measures_option("cpu,qps")
@option_group(
    "rules",
    RuleOptions,
    rate_option(),
    slo_options(),
    precision_options,
    click.option(
        "--max-overhead",
        type=QuantityType(),
        default=None,
        help="Exit 1 when a set's median overhead in the headline measure is above this (100us; "
        "a bare number in the measure's unit; 10% of its reference's cost).",
    ),
    click.option(
        "--max-overhead-us",
        type=Number(),  # a negative limit asks a set to be that much cheaper than its reference
        default=None,
        help="Exit 1 when a set's median overhead in server CPU µs/request is above this.",
    ),
    click.option(
        "--max-leak",
        type=Number(min=0),
        default=None,
        help="With --measure memory: exit 1 when a set keeps more than this many bytes per 1,000 "
        "requests in every round.",
    ),
)
@option_group(
    "serve",
    ServeOptions,
    click.option(
        "--log-output",
        type=LogOutput(),
        default=None,
        help="Where middleware logs go: stdout, null, or file:PATH  [default: a file per round, "
        "DIR/logs/SET.log]",
    ),
    server_option(many=True, wsgi_worker=COMPARE_WSGI_WORKER),
    server_options(COMPARE_WSGI_WORKER),
    python_option(many=True),
    click.option(
        "--memory-ceiling",
        type=ByteSize(),
        default=None,
        help="With --measure memory: kill a server whose RSS passes this (512MiB, 2GiB), and fail "
        "its round.  [default: a quarter of the machine's memory, at most 4GiB]",
    ),
    pass_env_option,
)
@variant_option
@pin_option
@tune_option
@out_dir_option(DEFAULT_OUT_DIR)
@click.option(
    "--ceiling/--no-ceiling",
    default=True,
    show_default=True,
    help="Measure the load generator's limit first, to flag wrk-bound results.",
)
@click.option(
    "--ceiling-qps",
    type=Number(min=0, min_open=True),
    default=None,
    help="The ceiling's QPS, given instead of measured.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Contenders measured at once in a round, each server on its own core: only for "
    "measures that count rather than time (instructions).  [default: the cores there are "
    "for those, else 1]",
)
@click.option(
    "--shard",
    type=Shard(),
    default=None,
    help="Measure only the K-th of N shares of the sets (each with what it is measured "
    "against), for a CI matrix; harness merge joins the shards' compare.json.",
)
@charts_option("Draw overhead.png, the sweeps' charts and the diff charts.")
@one_line_errors
def compare(
    *,
    what: WhatOptions,
    baseline: bool,
    load: LoadOptions,
    repeat: int,
    measures: tuple[str, ...],
    rules: RuleOptions,
    serve: ServeOptions,
    variants: tuple[str, ...],
    pin: bool,
    tune: bool,
    out_dir: str,
    ceiling: bool,
    ceiling_qps: float | None,
    jobs: int | None,
    shard: tuple[int, int] | None,
    charts: bool,
) -> None:
    """Per-request overhead of middleware sets (and frameworks) against the raw baseline; of
    your own app's middlewares with --app.

    Examples: harness compare -t flask -m none,all;
    harness compare --app main.py:app --path /items/1 -m each;
    harness compare -t starlette --server gunicorn-uvicorn,uvicorn,granian -m none;
    harness compare --app app.py:app --python old/bin/python,new/bin/python -m none,all
    """
    rules_met = resolve_rules(rules, measures, load)
    chosen = choose_from(what, python=serve.first_python)
    check_servers(chosen.targets, list(serve.servers or ()) or None, serve.worker_class)
    cpus = plan_cpus(pin)
    request = CompareRequest(
        targets=chosen.targets,
        sets=chosen.sets,
        serve=serve.settings(cpus),
        load=rules_met.load.settings(cpus, request=chosen.request, defaults=COMPARE_LOAD),
        servers=serve.servers or (),
        baseline=baseline,
        repeat=repeat,
        measures=rules_met.measures,
        precision=rules_met.precision,
        gate=rules_met.gate,
        ceiling=ceiling,
        ceiling_qps=ceiling_qps,
        tune=tune,
        out_dir=out_dir,
        slo=rules_met.slo,
        pythons=serve.pythons or (),
        variants=parse_variants(variants),
        shard=shard,
        jobs=jobs,
    )
    from harness.experiments.compare.run import compare as run_compare

    report = run_compare(request, echo=console.print)
    _show(report, charts=charts)
    _fail_where_a_rule_is_not_met(report, rules, rules_met.precision)


def _show(report: CompareReport, *, charts: bool) -> None:
    """The report's files written, and its tables and notes on the terminal; an interrupted
    compare exits 130 once what it measured is written."""
    from harness.experiments.compare.render import (
        rich_table,
        section_tables,
        server_table,
        write_report,
    )
    from harness.experiments.compare.render_environments import env_tables
    from harness.experiments.compare.render_notes import notes
    from harness.experiments.compare.render_variants import variant_tables

    write_report(report, charts=charts)
    if report.interrupted:
        console.print(
            "interrupted: the rounds that finished are in the report "
            f"({report.out_dir / 'compare.md'})"
        )
        sys.exit(130)
    console.print(rich_table(report))
    for table in section_tables(report):
        console.print(table)
    if report.server_rows:
        console.print(server_table(report))
    for table in (*env_tables(report), *variant_tables(report)):
        console.print(table)
    for line in notes(report):
        console.print(line)
    console.print(
        f"wrote {', '.join(str(f) for f in report.files[:3])}"
        + (f" and {len(report.files) - 3} charts" if len(report.files) > 3 else "")
    )


def _fail_where_a_rule_is_not_met(
    report: CompareReport, rules: RuleOptions, precision: Precision | None
) -> None:
    """Exit 1, saying why, when a gate failed, a set leaked, a required precision was not
    reached or rounds are missing."""
    if report.gate_failures:
        flag = "--max-overhead-us" if rules.max_overhead_us is not None else "--max-overhead"
        raise click.ClickException(f"overhead above {flag}: " + "; ".join(report.gate_failures))
    if rules.max_leak is not None:
        from harness.measures.memory import leaks

        kept = leaks(report.entries, rules.max_leak)
        if kept:
            raise click.ClickException(
                f"kept more than --max-leak {rules.max_leak:g} B per 1,000 requests: "
                + "; ".join(kept)
            )
    if report.precision_missed and precision is not None and precision.required:
        raise click.ClickException(
            f"{precision.describe(report.headline.unit)} not reached within "
            f"{precision.budget_s:g}s: " + "; ".join(report.precision_missed)
        )
    if report.missing:
        raise click.ClickException(f"{len(report.missing)} round(s) missing; see compare.md")
