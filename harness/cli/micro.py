"""`harness micro`: the click layer over harness.experiments.micro.micro()."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from harness.cli.axis_options import variant_option
from harness.cli.build_settings import WhatOptions
from harness.cli.choose import choose_from, what_options
from harness.cli.error_lines import one_line_errors
from harness.cli.params import (
    CountOrAuto,
    LogOutput,
    Number,
    TargetList,
    repeat_option,
    sets_option,
)
from harness.experiments.micro import (
    CLOCKS,
    DEFAULT_BATCH_S,
    DEFAULT_REPEAT,
    INSTRUCTIONS,
    MICRO_TARGETS,
    ROUTES,
    MicroOptions,
    MicroRequest,
)
from harness.load.files import versioned, write_json

if TYPE_CHECKING:
    from harness.experiments.micro.result import MicroReport
    from harness.serving.variants import Variant


@click.command("micro")
@what_options(
    targets=TargetList(MICRO_TARGETS, why_not={"ceiling": "ceiling has no app to call in-process"}),
    help=f"A target, or a comma list: {', '.join(MICRO_TARGETS)}.",
    many=True,
    sets=sets_option(" none is always measured."),
)
@repeat_option(DEFAULT_REPEAT, "Timed batches per set, interleaved across the sets.")
@click.option(
    "--requests",
    "-n",
    default="auto",
    show_default=True,
    type=CountOrAuto("requests"),
    help=f"Requests per batch; auto: a batch lasts about {DEFAULT_BATCH_S * 1000:g} ms.",
)
@click.option(
    "--route",
    type=click.Choice(sorted(ROUTES)),
    default="healthz",
    show_default=True,
    help="The request replayed on a target: GET /healthz, GET /panic (raises), POST /echo "
    "(JSON body); --path and the other request options replace it.",
)
@click.option(
    "--log-output",
    default="null",
    show_default=True,
    type=LogOutput(),
    help="Where middleware (and server-style error) logs go: null, stdout or file:PATH.",
)
@click.option(
    "--clock",
    type=click.Choice([*sorted(CLOCKS), INSTRUCTIONS]),
    default="wall",
    show_default=True,
    help="What a batch is measured with: wall time, the thread's CPU time (leaves out the "
    "time other processes had the core: steadier on a shared machine, blind to waits), or "
    "instructions (each app in a child under callgrind: deterministic, a few seconds an app).",
)
@click.option(
    "--memory",
    is_flag=True,
    help="Also count each app's allocations per request (blocks, bytes, by layer) and what "
    "it keeps per 1,000 requests, with memray; a set that keeps 16 B a request is leaking.",
)
@click.option(
    "--max-leak",
    type=Number(min=0),
    default=None,
    help="Exit 1 when a set keeps more than this many bytes per 1,000 requests (implies --memory).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the results, with every repeat and the environment, as JSON.",
)
@variant_option
@one_line_errors
def micro_command(
    *,
    what: WhatOptions,
    repeat: int,
    requests: int | None,
    route: str,
    log_output: str,
    clock: str,
    memory: bool,
    max_leak: float | None,
    json_path: Path | None,
    variants: tuple[str, ...],
) -> None:
    """In-process cost per request of middleware sets on a framework, or of your app's own
    middlewares (--app): no server, no network.

    Example: harness micro -t starlette -m each; harness micro --app main.py:app --path /items/1
    """
    chosen = choose_from(what, python=None)
    wire = chosen.request
    options = MicroOptions(
        targets=chosen.targets,
        sets=chosen.sets,
        repeat=repeat,
        requests=requests,
        request=MicroRequest.from_wire(wire) if wire is not None else route,
        log_output=log_output,
        clock=clock,
        memory=memory or max_leak is not None,
    )
    from harness.cli.console import console
    from harness.experiments.micro import micro
    from harness.serving.variants import parse_variants

    chosen_variants = parse_variants(variants)
    if chosen_variants:
        _across_variants(chosen_variants, json_path, options)
        return
    report = micro(options, echo=console.print)
    _show(report, json_path)
    _fail_where_a_check_fails(report, max_leak)


def _show(report: MicroReport, json_path: Path | None) -> None:
    from harness.cli.console import console
    from harness.experiments.micro.render import allocation_table, notes, rich_table

    console.print(rich_table(report))
    allocations = allocation_table(report)
    if allocations is not None:
        console.print(allocations)
    for line in notes(report):
        console.print(line, soft_wrap=True)
    if json_path is not None:
        _write_json(json_path, report.to_dict())


def _fail_where_a_check_fails(report: MicroReport, max_leak: float | None) -> None:
    """Exit 1 when a spin's known cost is not found, or a set keeps more than --max-leak."""
    from harness.cli.console import console
    from harness.experiments.calibrate.render import check_table
    from harness.experiments.micro import spin_checks
    from harness.measures.known_check import failure_message

    checks = spin_checks(report)
    if checks:
        console.print(check_table(checks, "spin: known cost against measured overhead"))
        failure = failure_message(checks, "spin check")
        if failure is not None:
            raise click.ClickException(failure)
    if max_leak is None:
        return
    kept = [
        f"{one.target} {s.name}: {s.allocations.retained:,.0f} B"
        for one in report.targets
        for s in one.sets
        if s.allocations is not None and s.allocations.retained > max_leak
    ]
    if kept:
        raise click.ClickException(
            f"kept more than --max-leak {max_leak:g} B per 1,000 requests: " + "; ".join(kept)
        )


def _across_variants(
    variants: Sequence[Variant], json_path: Path | None, options: MicroOptions
) -> None:
    """micro in each variant's own process, then each set against the first variant."""
    from harness.cli.console import console
    from harness.experiments.micro.render import variant_table
    from harness.experiments.micro.variant_children import micro_variants, variant_costs

    reports = micro_variants(variants, options, echo=console.print)
    console.print(variant_table(variant_costs(reports), reports))
    console.print(
        "Each variant ran in its own process (an app reads its configuration when imported): "
        "the change is Welch's over the repeats of two processes, so a difference of a few "
        "tenths of a µs may be the process's own (its memory layout), not the variant's.",
        soft_wrap=True,
    )
    if json_path is not None:
        _write_json(
            json_path,
            versioned(
                "micro-variants",
                1,
                {"variants": [v.to_dict() for v in variants], "reports": reports},
            ),
        )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from harness.cli.console import console

    if path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)
    console.print(f"wrote {path}")
