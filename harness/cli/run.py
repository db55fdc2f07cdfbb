"""`harness run` and `harness diff`: thin click layers over sweep() and diff()."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.table import Table

from harness.cli.params import CountOrAuto, CpuList, Duration, Levels, out_dir_option, wrk_option
from harness.load.progress import format_ms
from harness.load.results import SweepResult
from harness.load.sweep import (
    DEFAULT_NAME,
    DEFAULT_OUT_DIR,
    DEFAULT_PRESET,
    PRESETS,
    preset_threads,
)
from harness.load.wrk import WrkError
from harness.load.wrk_output import WrkResult


def _console() -> Console:
    from harness.cli.console import console

    return console


def _errors(level: WrkResult) -> str:
    kinds = zip(
        ("connect", "read", "write", "timeout"),
        (level.errors_connect, level.errors_read, level.errors_write, level.errors_timeout),
        strict=True,
    )
    return " ".join(f"{n:,} {kind}" for kind, n in kinds if n) or "0"


def summary_table(result: SweepResult, width: int = 160) -> Table:
    """One row per level; below 120 columns p50, max and non-2xx give way (all are in NAME.json)."""
    s = result.settings
    wide = width >= 120
    table = Table(
        title=f"{result.name}: {result.url}  "
        f"({s['duration_s']:g}s per level, -T{s['timeout_s']:g}s)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    columns = ["c", "conns/thr", "QPS", "avg", "p50", "p99", "max", "success", "socket errors"]
    columns += ["non-2xx"]
    if not wide:
        columns = [c for c in columns if c not in ("p50", "max", "non-2xx")]
        columns[columns.index("socket errors")] = "errors"
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True, min_width=7)
    peak = result.peak
    for level in sorted(result.levels, key=lambda lv: lv.concurrency):
        if not level.is_ok:
            # The reason goes below the table (failure_lines): a column would fold it to bits.
            status = f"[{'yellow' if level.status == 'skipped' else 'red'}]{level.status}[/]"
            table.add_row(str(level.concurrency), *["—"] * (len(columns) - 1), status)
            continue
        style = "green" if level.success_pct >= 99.995 else "yellow"
        cells = {
            "c": str(level.concurrency),
            "conns/thr": f"{level.connections}/{level.threads}",
            "QPS": f"[bold]{level.qps:,.0f}[/]" + (" ▲" if level is peak else ""),
            "avg": format_ms(level.latency_avg_ms),
            "p50": format_ms(level.p50_ms),
            "p99": format_ms(level.p99_ms),
            "max": format_ms(level.latency_max_ms),
            "success": f"[{style}]{level.success_pct:.2f}%[/]",
            "socket errors": _errors(level),
            "errors": f"{level.socket_errors + level.non2xx3xx:,}",
            "non-2xx": f"{level.non2xx3xx:,}",
        }
        table.add_row(*(cells[c] for c in columns), "ok")
    return table


def _levels_with(levels: list[WrkResult]) -> str:
    return ", ".join(
        f"c={lv.concurrency} ({lv.littles_law_ratio:.0%})" for lv in levels if lv.littles_law_ratio
    )


def sweep_notes(result: SweepResult) -> list[str]:
    """Failures with their reasons, then what the numbers themselves say is off."""
    notes = [f"c={lv.concurrency} {lv.status}: {lv.reason}" for lv in result.levels if not lv.is_ok]
    measured = result.ok_levels
    # Little's law for wrk's closed loop: connections ≈ QPS × mean latency.
    low = [lv for lv in measured if (lv.littles_law_ratio or 1.0) < 0.75]
    high = [lv for lv in measured if (lv.littles_law_ratio or 1.0) > 1.25]
    if low:
        notes.append(
            f"QPS × mean latency is well below the connections at {_levels_with(low)} "
            "(Little's law): connections spent time outside timed requests (reconnects, "
            "e.g. gunicorn sync; errors) or wrk itself was the bottleneck"
        )
    if high:
        notes.append(
            f"QPS × mean latency exceeds the connections at {_levels_with(high)} "
            "(Little's law): wrk's coordinated-omission correction (stats_correct) adds "
            "synthetic samples for slow responses, so its mean and percentiles overstate "
            "latency when there is a tail; compare QPS, or p50"
        )
    odd = [lv for lv in measured if lv.connections != lv.concurrency]
    notes += [
        f"c={lv.concurrency}: wrk opened {lv.connections} connections "
        f"({lv.threads} threads × {lv.connections // lv.threads})"
        for lv in odd
    ]
    return notes


@click.command()
@click.argument("url")
@click.option(
    "-n",
    "--name",
    default=DEFAULT_NAME,
    show_default=True,
    help="Job name: files are NAME.dat, NAME.json, NAME_*.png.",
)
@out_dir_option(DEFAULT_OUT_DIR)
@click.option(
    "-c",
    "--connections",
    "levels",
    type=Levels(),
    default=None,
    help="Concurrency levels, e.g. '8,32,64' or '200 500 1k'.  [default: "
    + " ".join(map(str, DEFAULT_PRESET.levels))
    + "]",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help="iam: the source document's wrktest.sh (10 levels, 300s each, -T30s, "
    "3×CPUs threads); quick: 4 levels of 2s.",
)
@click.option(
    "--duration",
    type=Duration(),
    default=None,
    help="wrk -d per level (wrk takes whole seconds; 500ms, 5s, 1m)."
    f"  [default: {DEFAULT_PRESET.duration:g}s]",
)
@click.option(
    "--timeout",
    type=Duration(),
    default=None,
    help=f"wrk --timeout per request.  [default: {DEFAULT_PRESET.timeout:g}s]",
)
@click.option(
    "--threads",
    type=CountOrAuto("threads"),
    default=None,
    help="wrk threads, or auto: one per CPU wrk may use; never above the connections."
    "  [default: auto]",
)
@click.option(
    "--warmup",
    type=Duration(),
    default=None,
    help="Warm-up run before the levels, discarded; 0 skips it."
    f"  [default: {DEFAULT_PRESET.warmup:g}s]",
)
@wrk_option
@click.option(
    "--cpus",
    type=CpuList(),
    default=None,
    help="Pin wrk to these CPUs (taskset), e.g. 1 or 2-3.  [default: not pinned]",
)
@click.option(
    "--resume", is_flag=True, help="Keep the levels NAME.json already has and run the rest."
)
@click.option(
    "--charts/--no-charts", default=True, show_default=True, help="Draw the PNG charts at the end."
)
def run(
    url: str,
    name: str,
    out_dir: Path,
    levels: tuple[int, ...] | None,
    preset: str | None,
    duration: float | None,
    timeout: float | None,
    threads: int | None,
    warmup: float | None,
    wrk: str | None,
    cpus: tuple[int, ...] | None,
    resume: bool,
    charts: bool,
) -> None:
    """Sweep concurrency levels with wrk against URL (the source document's wrktest.sh)."""
    from harness.load.progress import RichReporter
    from harness.load.sweep import SweepError, sweep

    chosen = PRESETS[preset] if preset else DEFAULT_PRESET
    console = _console()
    started = time.monotonic()
    try:
        result = sweep(
            url=url,
            name=name,
            out_dir=out_dir,
            levels=levels or chosen.levels,
            duration=duration if duration is not None else chosen.duration,
            timeout=timeout if timeout is not None else chosen.timeout,
            threads=threads if threads is not None else preset_threads(chosen),
            warmup=warmup if warmup is not None else chosen.warmup,
            wrk=wrk,
            cpus=cpus,
            resume=resume,
            progress=RichReporter(console),
            meta={"command": "run", "preset": preset},
        )
    except (SweepError, WrkError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        console.print(
            f"\n[yellow]interrupted[/]: the finished levels are in {out_dir / name}.dat and "
            f"{out_dir / name}.json; continue with --resume"
        )
        sys.exit(130)
    if charts:
        from harness.output.charts import plot_sweep

        plot_sweep(result)
    console.print(summary_table(result, console.width))
    for note in sweep_notes(result):
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    console.print(f"data: {result.dat_path}, {result.json_path}", soft_wrap=True)
    for chart in result.charts:
        console.print(f"chart: {chart}", soft_wrap=True)
    console.print(f"took {time.monotonic() - started:.1f}s")
    if result.all_failed:
        console.print("[red]error:[/] every level failed; nothing was measured")
        sys.exit(1)
