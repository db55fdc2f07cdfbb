"""`harness demo`: the click layer over harness.experiments.demo.run.demo()."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.console import console
from harness.cli.error_lines import one_line_errors
from harness.cli.params import out_dir_option, pin_option, wrk_option
from harness.experiments.demo.run import DEFAULT_OUT_DIR
from harness.machine.cpus import plan


@click.command()
@out_dir_option(DEFAULT_OUT_DIR, "Output directory for the report and every run's files.")
@click.option("--quick", is_flag=True, help="One short round per stack: well under a minute.")
@wrk_option
@pin_option
@one_line_errors
def demo(out_dir: Path, quick: bool, wrk: str | None, pin: bool) -> None:
    """The teaching tour: frameworks vs raw baselines, middleware costs, a profile, a report."""
    from harness.experiments.demo.findings import findings
    from harness.experiments.demo.render import write_demo_report
    from harness.experiments.demo.run import demo as run_demo
    from harness.experiments.sweep.plan import DEFAULT_LOAD
    from harness.serving.settings import ServeSettings

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
