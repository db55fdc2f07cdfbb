"""`harness demo`: the click layer over harness.tour.demo.demo()."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.console import console
from harness.cli.params import out_dir_option, pin_option, wrk_option
from harness.tour.demo import DEFAULT_OUT_DIR


@click.command()
@out_dir_option(DEFAULT_OUT_DIR, "Output directory for the report and every run's files.")
@click.option("--quick", is_flag=True, help="One short round per stack: well under a minute.")
@wrk_option
@pin_option
def demo(out_dir: Path, quick: bool, wrk: str | None, pin: bool) -> None:
    """The teaching tour: frameworks vs raw baselines, middleware costs, a profile, a report."""
    from harness.load.sweep import SweepError
    from harness.load.wrk import WrkError
    from harness.serving.servers import ServerError
    from harness.tour.demo import demo as run_demo
    from harness.tour.findings import findings
    from harness.tour.report import write_demo_report

    try:
        result = run_demo(out_dir=out_dir, quick=quick, wrk=wrk, pin=pin, echo=console.print)
    except (SweepError, WrkError, ServerError) as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    result.files = write_demo_report(result)
    console.print()
    for finding in findings(result):
        console.print(f"• {finding}\n")
    console.print(
        f"demo done in {result.wall_s:.0f}s; report: " + ", ".join(str(f) for f in result.files)
    )
