"""`harness micro`: the click layer over harness.measure.micro.micro()."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from harness.cli.params import CountOrAuto, LogOutput, TargetList, sets_option
from harness.measure.micro import (
    DEFAULT_BATCH_S,
    DEFAULT_REPEAT,
    EXCLUDED,
    INCLUDED,
    MICRO_TARGETS,
    ROUTES,
    MicroError,
    MicroReport,
)
from harness.measure.stats import Estimate


def _us(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ci(e: Estimate | None, digits: int = 3) -> str:
    if e is None or e.low is None or e.high is None:
        return "—"
    return f"[{e.low:,.{digits}f}, {e.high:,.{digits}f}]"


def rich_table(report: MicroReport) -> Table:
    table = Table(title="in-process cost per request (µs), median and 95% interval over repeats")
    for column in ("target", "set", "µs/request", "95% CI", "overhead vs none", "95% CI", "N"):
        table.add_column(column, justify="left" if column in ("target", "set") else "right")
    for one in report.targets:
        loop = one.loop.estimate
        table.add_row(
            one.target, "(empty app)", _us(loop.median), _ci(loop), "", "", str(one.loop.requests)
        )
        for s in one.sets:
            e = s.series.estimate
            mark = "" if s.overhead is None or s.overhead.significant else " (n.s.)"
            table.add_row(
                "",
                s.name,
                _us(e.median),
                _ci(e),
                (_us(s.overhead.median) + mark) if s.overhead else "",
                _ci(s.overhead) if s.overhead else "",
                str(s.series.requests),
            )
    return table


def notes(report: MicroReport) -> list[str]:
    lines = []
    for one in report.targets:
        loop = one.loop.estimate
        none = one.none
        extra = ""
        if none is not None:
            own = none.series.estimate.median - loop.median
            extra = f"; the framework's own cost (none − empty): {own:,.3f} µs"
        lines.append(
            f"{one.target}: the measuring loop with an empty {one.interface} app costs "
            f"{loop.median:,.3f} µs/request{extra}"
        )
    interfaces = sorted({one.interface for one in report.targets})
    for interface in interfaces:
        lines.append(f"included ({interface}): {INCLUDED[interface]}")
    lines.append(f"excluded: {EXCLUDED}")
    load = report.environment.get("load_avg") or [0.0]
    cpus = len(report.environment.get("cpus_available") or [1])
    if load[0] > 0.5 * cpus:
        lines.append(
            f"note: load average {load[0]:.2f} on {cpus} CPU(s) at the start: other processes "
            "were running, expect wider intervals"
        )
    lines.append(
        f"repeats: {report.settings['repeat']}, interleaved and rotated; (n.s.): the interval "
        f"includes zero; {report.wall_s:.1f} s"
    )
    return lines


@click.command("micro")
@click.option(
    "-t",
    "--target",
    "targets",
    required=True,
    type=TargetList(MICRO_TARGETS, why_not={"ceiling": "ceiling has no app to call in-process"}),
    help=f"A target, or a comma list: {', '.join(MICRO_TARGETS)}.",
)
@sets_option(" none is always measured.")
@click.option(
    "--repeat",
    "-r",
    type=click.IntRange(min=2),
    default=DEFAULT_REPEAT,
    show_default=True,
    help="Timed batches per set, interleaved across the sets.",
)
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
    help="The request replayed: GET /healthz, GET /panic (raises), POST /echo (JSON body).",
)
@click.option(
    "--log-output",
    default="null",
    show_default=True,
    type=LogOutput(),
    help="Where middleware (and server-style error) logs go: null, stdout or file:PATH.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the results, with every repeat and the environment, as JSON.",
)
def micro_command(json_path: Path | None, **options: Any) -> None:
    """In-process cost per request of middleware sets on a framework: no server, no network.

    Example: harness micro -t starlette -m each
    """
    from harness.cli.console import console
    from harness.measure.micro import micro

    try:
        report = micro(echo=console.print, request=options.pop("route"), **options)
    except MicroError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(rich_table(report))
    for line in notes(report):
        console.print(line, soft_wrap=True)
    if json_path is not None:
        if json_path.parent != Path():
            json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        console.print(f"wrote {json_path}")
    from harness.measure.check import failure_message
    from harness.measure.micro import spin_checks
    from harness.output.calibration import check_table

    checks = spin_checks(report)
    if checks:
        console.print(check_table(checks, "spin: known cost against measured overhead"))
        failure = failure_message(checks, "spin check")
        if failure is not None:
            raise click.ClickException(failure)
