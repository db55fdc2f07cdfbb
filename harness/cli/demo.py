"""`harness demo`: the click layer over harness.tour.demo.demo()."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.console import console
from harness.cli.errors import one_line_errors
from harness.cli.params import out_dir_option, pin_option, wrk_option
from harness.machine.cpus import plan
from harness.tour.demo import DEFAULT_OUT_DIR


@click.command()
@out_dir_option(DEFAULT_OUT_DIR, "Output directory for the report and every run's files.")
@click.option("--quick", is_flag=True, help="One short round per stack: well under a minute.")
@wrk_option
@pin_option
@one_line_errors
def demo(out_dir: Path, quick: bool, wrk: str | None, pin: bool) -> None:
    """The teaching tour: frameworks vs raw baselines, middleware costs, a profile, a report."""
    from harness.load.plan import DEFAULT_LOAD
    from harness.serving.settings import ServeSettings
    from harness.tour.demo import demo as run_demo
    from harness.tour.findings import findings
    from harness.tour.report import write_demo_report

    cpus = plan(pin)
    result = run_demo(
        out_dir=out_dir,
        quick=quick,
        serve=ServeSettings(cpus=cpus.server),
        load=DEFAULT_LOAD.replace(cpus=cpus.load, wrk=wrk),
        echo=console.print,
    )
    result.files = write_demo_report(result)
    console.print()
    for finding in findings(result):
        console.print(f"• {finding}\n")
    console.print(
        f"demo done in {result.wall_s:.0f}s; report: " + ", ".join(str(f) for f in result.files)
    )
