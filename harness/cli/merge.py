"""`harness merge`: the click layer over harness.experiments.compare.merge.merge()."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.console import console
from harness.cli.error_lines import one_line_errors
from harness.cli.params import charts_option, out_dir_option
from harness.experiments.compare.plan import DEFAULT_OUT_DIR
from harness.experiments.sweep.plan import check_out_dir


@click.command("merge")
@click.argument("shards", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@out_dir_option(DEFAULT_OUT_DIR, "Where the merged compare.json, compare.md and charts go.")
@charts_option("Draw overhead.png.")
@one_line_errors
def merge_command(shards: tuple[Path, ...], out_dir: Path, charts: bool) -> None:
    """One compare from its shards' compare.json (each measured with compare --shard K/N,
    on a CI matrix, say): every set with its interval, as if measured in one run.

    Example: harness merge shard-1/compare.json shard-2/compare.json -d merged"""
    from harness.experiments.compare.merge import merge
    from harness.experiments.compare.render import rich_table, write_report
    from harness.experiments.compare.render_notes import notes
    from harness.experiments.compare.result import CompareReport

    reports = [CompareReport.load(path) for path in shards]
    check_out_dir(out_dir)
    merged = merge(reports, out_dir)
    write_report(merged, charts=charts, sweeps=False)
    console.print(rich_table(merged))
    for line in notes(merged):
        console.print(line, soft_wrap=True, markup=False)
    console.print(
        f"merged {len(reports)} shards; wrote {', '.join(str(f) for f in merged.files)}",
        soft_wrap=True,
    )
