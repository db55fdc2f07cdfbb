"""`harness run`: the click layer over harness.load.sweep.sweep() (wrktest.sh)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from harness.cli.console import console
from harness.cli.params import CountOrAuto, CpuList, Duration, Levels, out_dir_option, wrk_option
from harness.load.sweep import (
    DEFAULT_NAME,
    DEFAULT_OUT_DIR,
    DEFAULT_PRESET,
    PRESETS,
    preset_threads,
)
from harness.load.wrk import WrkError


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
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Send load to a host that is not loopback (a server of yours on another machine or "
    "network namespace, e.g. `harness lab up`'s); the first line says what will be sent.",
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
    allow_remote: bool,
) -> None:
    """Sweep concurrency levels with wrk against URL (the source document's wrktest.sh)."""
    from harness.load.progress import RichReporter
    from harness.load.sweep import (
        SweepError,
        check_url,
        kept_levels,
        remote_announcement,
        sweep,
    )

    chosen = PRESETS[preset] if preset else DEFAULT_PRESET
    plan = levels or chosen.levels
    duration = duration if duration is not None else chosen.duration
    warmup = warmup if warmup is not None else chosen.warmup
    started = time.monotonic()
    try:
        if allow_remote:
            host = check_url(url, allow_remote=True)
            console.print(
                remote_announcement(host=host, levels=plan, duration=duration, warmup=warmup),
                soft_wrap=True,
            )
        result = sweep(
            url=url,
            name=name,
            out_dir=out_dir,
            levels=plan,
            duration=duration,
            timeout=timeout if timeout is not None else chosen.timeout,
            threads=threads if threads is not None else preset_threads(chosen),
            warmup=warmup,
            wrk=wrk,
            cpus=cpus,
            resume=resume,
            progress=RichReporter(console),
            meta={"command": "run", "preset": preset, "allow_remote": allow_remote},
            allow_remote=allow_remote,
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

        try:
            plot_sweep(result)
        except OSError as exc:
            raise click.ClickException(
                f"cannot write the charts in {result.out_dir}: {exc.strerror or exc}; the "
                f"{kept_levels(result)}"
            ) from None
    from harness.output.sweep_table import summary_table, sweep_notes

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
